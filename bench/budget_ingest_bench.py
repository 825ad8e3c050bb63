"""Ingest with budgets on vs off: what the budget counter update costs per ingested event.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/budget_ingest_bench.py

Creates a scratch database `opsdash_budget_ingest` holding the demo fleet's agents and teams
and a realistic set of budgets, all with the default thresholds: the fleet's monthly LLM spend,
each team's weekly LLM spend, each agent's daily LLM spend, the fleet's daily tokens and its
daily actions. Caps are high enough that no threshold fires. Then rounds alternate, budgets off
(inactive: the counting finds no budget, as with none defined) and on, each ingesting the same
number of fresh priced `llm_call` events in batches of `--batch`, one agent per batch, through
`event_batch_ingest` as `POST /api/v1/events` calls it, and a few proposals as
`POST /api/v1/actions` stores them (a proposal and its policy decision, one call each). Prints
events/s per mode, the ratio on/off and the per-event cost of the counter update; then checks
that every budget's BudgetDay total equals what the "on" rounds sent it, and exits 1 if not.
"""

import argparse
import gc
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import django_setup, postgres_settings, scratch_database

MODELS = [("claude-sonnet-4-5", 0.7), ("claude-haiku-4-5", 0.25), ("claude-opus-4-1", 0.05)]
SERVICES = ["payments-api", "checkout", "ledger", "search", "auth", "orders", "queue-worker"]


@dataclass
class Sent:
    """What the budgets-on rounds sent, per agent id: the figures the counters must show."""

    tokens: dict[int, int] = field(default_factory=dict)
    proposals: dict[int, int] = field(default_factory=dict)
    llm_ids: list[uuid.UUID] = field(default_factory=list)


@dataclass
class Round:
    mode: str
    events: int = 0
    llm_calls: int = 0
    proposals: int = 0
    llm_seconds: float = 0.0
    proposal_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        return self.llm_seconds + self.proposal_seconds


def llm_call(rng: random.Random, slug: str, ts: datetime, seq: int) -> tuple[bytes, int, str]:
    """One priced llm_call shaped like the demo fleet's; returns it, its tokens and its id."""
    from apps.audit.canonical import encode_json, format_ts

    svc = rng.choice(SERVICES)
    logs = "\n".join(
        f'{format_ts(ts)} {svc}-{rng.randint(1, 9)} level=error msg="upstream connect error" '
        f"latency_ms={rng.randint(120, 9000)} peer=10.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
        f".{rng.randint(1, 254)}"
        for _ in range(rng.randint(8, 22))
    )
    prompt = (
        f"You are {slug}, an SRE agent. Task: diagnose the alert.\nAlert: HighErrorRate on "
        f"service {svc}.\nRecent logs:\n{logs}\n"
    )
    answer = (
        f"Diagnosis: the {svc} pods are failing readiness after the last deploy; error rate rose "
        f"to {rng.randint(2, 19)}%. Evidence: {rng.randint(3, 40)} upstream connect errors in the "
        "last 10 minutes and a matching latency spike."
    )
    data = {
        "model": rng.choices([m for m, _ in MODELS], weights=[w for _, w in MODELS])[0],
        "provider": "anthropic",
        "input_tokens": len(prompt) // 4 + rng.randint(800, 4000),
        "output_tokens": rng.randint(150, 1200),
        "cache_read_input_tokens": rng.choice([0, 0, 1024, 2048]),
        "cache_creation_input_tokens": rng.choice([0, 0, 0, 512]),
        "latency_ms": rng.randint(600, 9000),
        "stop_reason": "end_turn",
        "request": prompt,
        "response": answer,
    }
    tokens = (
        data["input_tokens"]
        + data["output_tokens"]
        + data["cache_read_input_tokens"]
        + data["cache_creation_input_tokens"]
    )
    event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    item = {
        "id": event_id,
        "ts": format_ts(ts),
        "agent": slug,
        "type": "llm_call",
        "data": data,
        "incident_id": f"INC-{seq // 40:05d}",
        "agent_version": "2.0.0",
        "prompt_version": "p2",
    }
    return encode_json(item), tokens, event_id


def proposal(rng: random.Random, slug: str, ts: datetime, action_id: str) -> list[bytes]:
    """A proposal and its policy decision, as apps.actions.propose stores them."""
    from apps.audit.canonical import encode_json, format_ts

    svc = rng.choice(SERVICES)
    common: dict[str, Any] = {
        "agent": slug,
        "action_id": action_id,
        "ts": format_ts(ts),
        "agent_version": "2.0.0",
        "prompt_version": "p2",
    }
    return [
        encode_json(
            {
                **common,
                "id": str(uuid.uuid4()),
                "type": "proposal",
                "data": {
                    "action_type": "k8s.restart_deployment",
                    "target": f"k8s://prod/{svc}/api",
                    "env": "prod",
                    "risk": "medium",
                    "confidence": round(rng.uniform(0.5, 0.95), 2),
                    "rationale": f"The {svc} pods fail readiness since the last deploy.",
                    "citations": [{"source": "loki", "ref": f"loki://{svc}/errors"}],
                    "rollback_plan": "kubectl rollout undo",
                    "parameters": {"deployment": svc},
                },
            }
        ),
        encode_json(
            {
                **common,
                "id": str(uuid.uuid4()),
                "type": "policy_decision",
                "data": {
                    "decision": "pending_approval",
                    "reasons": ["medium risk in prod needs one approver"],
                    "policy_version": 1,
                    "matched_rules": ["prod-medium"],
                    "effective_risk": "medium",
                    "approvers_required": 1,
                    "separation_of_duties": False,
                },
            }
        ),
    ]


def fleet() -> list[Any]:
    from apps.demo.generator import DEMO_AGENTS
    from apps.fleet.models import Agent, Team

    teams = {}
    for demo in DEMO_AGENTS:
        if demo.team not in teams:
            teams[demo.team] = Team.objects.create(slug=demo.team, name=demo.team.title())
    return [
        Agent.objects.create(
            slug=d.slug, team=teams[d.team], autonomy_mode=d.mode, environment=d.env
        )
        for d in DEMO_AGENTS
    ]


def budgets_define(agents: list[Any]) -> list[Any]:
    """A FinOps-like set, every budget with the default thresholds."""
    from apps.budgets.services import budget_create

    made = [
        budget_create(
            slug="fleet-month-usd",
            name="Fleet LLM spend per month",
            scope="global",
            measure="llm_usd",
            period="monthly",
            cap=Decimal(1_000_000),
        ),
        budget_create(
            slug="fleet-day-tokens",
            name="Fleet tokens per day",
            scope="global",
            measure="tokens",
            period="daily",
            cap=Decimal(10**12),
        ),
        budget_create(
            slug="fleet-day-actions",
            name="Fleet actions per day",
            scope="global",
            measure="actions",
            period="daily",
            cap=Decimal(1_000_000),
        ),
    ]
    for team in sorted({a.team for a in agents}, key=lambda t: t.slug):
        made.append(
            budget_create(
                slug=f"{team.slug}-week-usd",
                name=f"{team.name} LLM spend per week",
                scope="team",
                team=team,
                measure="llm_usd",
                period="weekly",
                time_zone="Europe/Berlin",
                cap=Decimal(200_000),
            )
        )
    for agent in agents:
        made.append(
            budget_create(
                slug=f"{agent.slug}-day-usd",
                name=f"{agent.slug} LLM spend per day",
                scope="agent",
                agent=agent,
                measure="llm_usd",
                period="daily",
                cap=Decimal(50_000),
            )
        )
    return made


def run_round(
    mode: str,
    round_no: int,
    agents: list[Any],
    args: argparse.Namespace,
    rng: random.Random,
    sent: Sent | None,
) -> Round:
    """One round: fresh events, generated untimed, then ingested with the clock running."""
    from apps.audit.models import EventSource
    from apps.audit.services.ingest import ALL_TYPES, event_batch_ingest
    from apps.budgets.models import Budget

    Budget.objects.update(active=(mode == "on"))
    now = datetime.now(UTC)
    batches: list[tuple[Any, list[bytes]]] = []
    proposals: list[tuple[Any, list[bytes]]] = []
    for b in range(args.events // args.batch):
        agent = agents[(round_no + b) % len(agents)]
        items = []
        for i in range(args.batch):
            ts = now - timedelta(milliseconds=rng.randint(0, 60_000))
            raw, tokens, event_id = llm_call(rng, agent.slug, ts, b * args.batch + i)
            items.append(raw)
            if sent is not None:
                sent.tokens[agent.pk] = sent.tokens.get(agent.pk, 0) + tokens
                sent.llm_ids.append(uuid.UUID(event_id))
        batches.append((agent, items))
    for p in range(args.proposals):
        agent = agents[(round_no + p) % len(agents)]
        action_id = f"bench-{round_no}-{p}"
        proposals.append((agent, proposal(rng, agent.slug, now, action_id)))
        if sent is not None:
            sent.proposals[agent.pk] = sent.proposals.get(agent.pk, 0) + 1
    # Proposals come between llm_call batches, spread evenly, as they would from agents at work.
    after: dict[int, list[tuple[Any, list[bytes]]]] = {}
    for p, pair in enumerate(proposals):
        after.setdefault(p * len(batches) // len(proposals), []).append(pair)
    result = Round(mode)
    for b, (agent, items) in enumerate(batches):
        t0 = time.perf_counter()
        # As POST /api/v1/events calls it.
        stored = event_batch_ingest(items=items, token_agent=agent)
        result.llm_seconds += time.perf_counter() - t0
        assert stored.accepted == len(items), stored.rejected[:2]
        result.llm_calls += len(items)
        for p_agent, pair in after.get(b, []):
            t0 = time.perf_counter()
            # As apps.actions.propose stores a proposal: its own call, both events at once.
            stored = event_batch_ingest(
                items=pair,
                source=EventSource.OPSDASH,
                allowed_types=ALL_TYPES,
                agents_by_slug=lambda slug, a=p_agent: a if slug == a.slug else None,
                expect_new=True,
            )
            result.proposal_seconds += time.perf_counter() - t0
            assert stored.accepted == len(pair), stored.rejected[:2]
            result.proposals += 1
    result.events = result.llm_calls + 2 * result.proposals
    return result


def verify(budgets: list[Any], agents: list[Any], sent: Sent) -> bool:
    """Every budget's counted total equals what the budgets-on rounds sent it, exactly."""
    from django.db.models import Sum

    from apps.budgets.models import Budget, BudgetCrossing, BudgetDay
    from apps.costs.models import LlmUsage
    from apps.fleet.models import Agent

    usd: dict[int, Decimal] = {}
    priced = 0
    for start in range(0, len(sent.llm_ids), 5000):
        rows = (
            LlmUsage.objects.filter(event_id__in=sent.llm_ids[start : start + 5000])
            .values("agent_id")
            .annotate(usd=Sum("cost_usd"), n=Sum(1))
            .order_by()
        )
        for row in rows:
            usd[row["agent_id"]] = usd.get(row["agent_id"], Decimal(0)) + row["usd"]
            priced += row["n"]
    ok = priced == len(sent.llm_ids)
    print(
        f"check: {priced:,} of the {len(sent.llm_ids):,} llm_calls sent with budgets on are priced"
        + ("" if ok else "  MISMATCH")
    )
    teams = {a.pk: a.team_id for a in agents}
    for budget in Budget.objects.filter(pk__in=[b.pk for b in budgets]).order_by("pk"):
        if budget.scope == "global":
            covered = list(teams)
        elif budget.scope == "team":
            covered = [a for a, t in teams.items() if t == budget.team_id]
        else:
            covered = [budget.agent_id]
        if budget.measure == "llm_usd":
            expected = sum((usd.get(a, Decimal(0)) for a in covered), Decimal(0))
        elif budget.measure == "tokens":
            expected = Decimal(sum(sent.tokens.get(a, 0) for a in covered))
        else:
            expected = Decimal(sum(sent.proposals.get(a, 0) for a in covered))
        counted = BudgetDay.objects.filter(budget=budget).aggregate(s=Sum("amount"))["s"]
        counted = counted or Decimal(0)
        # A global budget counts every event sent while on: zero there means nothing counted.
        good = counted == expected and (expected > 0 or budget.scope != "global")
        ok &= good
        verdict = "ok" if good else "MISMATCH"
        if good and not expected:
            verdict += " (nothing sent in its scope: too few batches for every agent)"
        print(
            f"check: {budget.slug:<24} counted {counted.normalize():>22,f} {budget.measure:<8}"
            f" sent {expected.normalize():>22,f}  {verdict}"
        )
    crossings = BudgetCrossing.objects.count()
    halted = Agent.objects.filter(halted=True).count()
    print(f"check: {crossings} thresholds crossed, {halted} agents halted (both must be 0)")
    return ok and crossings == 0 and halted == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="timed rounds per mode")
    parser.add_argument("--events", type=int, default=2000, help="llm_calls per round")
    parser.add_argument("--batch", type=int, default=100, help="llm_calls per ingest call")
    parser.add_argument("--proposals", type=int, default=20, help="proposals per round")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.events < args.batch:
        sys.exit("--events must be at least --batch.")
    url = scratch_database("opsdash_budget_ingest")
    django_setup(url)
    from django.db import connection

    agents = fleet()
    budgets = budgets_define(agents)
    print(
        f"{len(agents)} agents in {len({a.team_id for a in agents})} teams; {len(budgets)} "
        "budgets with the default thresholds: " + ", ".join(b.slug for b in budgets),
        flush=True,
    )
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")  # the set-up's writes, flushed before the measurement
    print(postgres_settings(), flush=True)
    rng = random.Random(args.seed)
    sent = Sent()
    gc.collect()
    gc.freeze()
    # Warm-up, untimed: caches, prepared price book, first-touch of the tables' pages.
    for mode in ("off", "on"):
        run_round(mode, -1, agents, args, rng, sent if mode == "on" else None)
    rounds: list[Round] = []
    for round_no in range(args.rounds * 2):
        mode = "off" if round_no % 2 == 0 else "on"
        r = run_round(mode, round_no, agents, args, rng, sent if mode == "on" else None)
        rounds.append(r)
        print(
            f"round {round_no // 2 + 1} budgets {mode:<3}: {r.events:,} events in {r.seconds:.2f} s"
            f" = {r.events / r.seconds:,.0f} events/s  (llm_call batches {r.llm_seconds:.2f} s,"
            f" {r.proposals} proposals {r.proposal_seconds:.2f} s)",
            flush=True,
        )
    off = [r for r in rounds if r.mode == "off"]
    on = [r for r in rounds if r.mode == "on"]

    def total(rs: list[Round], attr: str) -> float:
        return sum(getattr(r, attr) for r in rs)

    rate_off = total(off, "events") / total(off, "seconds")
    rate_on = total(on, "events") / total(on, "seconds")
    pairs = sorted(
        (b.events / b.seconds) / (a.events / a.seconds) for a, b in zip(off, on, strict=True)
    )
    per_event = (total(on, "seconds") - total(off, "seconds")) / total(on, "events") * 1e6
    per_call = (total(on, "llm_seconds") - total(off, "llm_seconds")) / total(on, "llm_calls")
    per_proposal = (total(on, "proposal_seconds") - total(off, "proposal_seconds")) / max(
        total(on, "proposals"), 1
    )
    print(
        f"budgets off: {total(off, 'events'):,.0f} events in {total(off, 'seconds'):.2f} s = "
        f"{rate_off:,.0f} events/s"
    )
    print(
        f"budgets on : {total(on, 'events'):,.0f} events in {total(on, 'seconds'):.2f} s = "
        f"{rate_on:,.0f} events/s  ({len(budgets)} budgets; an llm_call counts in 4, a proposal "
        "in 1)"
    )
    print(
        f"ratio on/off = {rate_on / rate_off:.3f}  (per pair of rounds: median "
        f"{statistics.median(pairs):.3f}, range {pairs[0]:.3f}-{pairs[-1]:.3f}; batch "
        f"{args.batch} llm_calls, {args.proposals} proposals per {args.events:,} llm_calls)"
    )
    print(
        f"counter update: {per_event:+.1f} us per ingested event  (per llm_call "
        f"{per_call * 1e6:+.1f} us, i.e. {per_call * args.batch * 1000:+.2f} ms per batch of "
        f"{args.batch}; per proposal call {per_proposal * 1000:+.2f} ms)"
    )
    if not verify(budgets, agents, sent):
        print("FAILED: the budgets did not count exactly what was sent")
        sys.exit(1)


if __name__ == "__main__":
    main()
