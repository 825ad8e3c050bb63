"""Per-minute SLO rollups from the derived consumer "slo" and from rebuild_rollups, against
hand-computed fixtures (events go through the real ingest)."""

import io
import random
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.actions.models import Incident
from apps.audit.models import DerivedCursor, LedgerSeal
from apps.fleet.models import Agent, Team
from apps.slo.models import SliFact, Slo, SloRollup
from apps.slo.rollups import slo_apply, slo_fact_filter, slo_rollups_rebuild
from tests.slo.test_facts import (
    alert,
    apply,
    at,
    decision,
    execution,
    ingest,
    m,
    outcome,
    proposal,
    rollback,
    verdict,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(agent: Agent, other_agent: Agent) -> dict[str, Agent]:
    """triage-bot and k8s-healer (team platform), payments-sre (team payments)."""
    payments = Team.objects.create(slug="payments", name="Payments")
    third = Agent.objects.create(slug="payments-sre", team=payments)
    return {"triage-bot": agent, "k8s-healer": other_agent, "payments-sre": third}


def make_slo(slug: str, sli: str, **fields: Any) -> Slo:
    return Slo.objects.create(slug=slug, name=slug, sli=sli, objective=Decimal("0.99"), **fields)


def rollups(slo: Slo) -> dict[datetime, tuple[int, int]]:
    """{minute: (good, total)} of one SLO."""
    return {r.minute: (r.good, r.total) for r in SloRollup.objects.filter(slo=slo)}


def all_rollups() -> dict[tuple[str, datetime], tuple[int, int]]:
    return {
        (r.slo.slug, r.minute): (r.good, r.total) for r in SloRollup.objects.select_related("slo")
    }


def test_acceptance_rollups_by_scope_version_and_minute_edges(fleet):
    platform = fleet["triage-bot"].team
    payments = fleet["payments-sre"].team
    slos = {
        "all": make_slo("all", "acceptance"),
        "agent": make_slo("agent", "acceptance", scope="agent", agent=fleet["triage-bot"]),
        "platform": make_slo("platform", "acceptance", scope="team", team=platform),
        "payments": make_slo("payments", "acceptance", scope="team", team=payments),
        "v2": make_slo("v2", "acceptance", agent_version="2.0.0"),
    }

    def life(action: str, agent: str, version: str, value: str, decided: float):
        return [
            proposal(action, at(0), incident=None, agent=agent, agent_version=version),
            decision(action, at(decided), value, agent=agent),
        ]

    ingest(
        *life("a1", "triage-bot", "1.0.0", "approved", 70),
        *life("a2", "triage-bot", "1.0.0", "rejected", 100),
        *life("a3", "k8s-healer", "2.0.0", "approved", 125),
        # The last microsecond of 09:01, and the first of 09:03: window edges of a minute.
        *life("a4", "payments-sre", "1.0.0", "denied", 119.999999),
        *life("a5", "payments-sre", "1.0.0", "approved", 180),
        *life("a6", "triage-bot", "1.0.0", "expired", 100),  # not counted anywhere
    )
    apply()
    assert rollups(slos["all"]) == {m(60): (1, 3), m(120): (1, 1), m(180): (1, 1)}
    assert rollups(slos["agent"]) == {m(60): (1, 2)}
    assert rollups(slos["platform"]) == {m(60): (1, 2), m(120): (1, 1)}
    assert rollups(slos["payments"]) == {m(60): (0, 1), m(180): (1, 1)}
    assert rollups(slos["v2"]) == {m(120): (1, 1)}


def test_threshold_slos_decide_good_by_value_at_most_threshold(fleet):
    t60 = make_slo("ttp-60", "time_to_propose", threshold=Decimal("60"))
    t120 = make_slo("ttp-120", "time_to_propose", threshold=Decimal("120"))
    none = make_slo("ttp-none", "time_to_propose")  # no bar: counts nothing
    ingest(
        alert(at(0)),
        proposal("t1", at(30)),  # 30 s: good for both
        proposal("t2", at(60)),  # 60 s, exactly the threshold: good for both
        proposal("t3", at(90)),  # 90 s: good for 120 only
        proposal("t4", at(150)),  # 150 s: bad for both
    )
    apply()
    assert rollups(t60) == {m(0): (1, 1), m(60): (1, 2), m(120): (0, 1)}
    assert rollups(t120) == {m(0): (1, 1), m(60): (2, 2), m(120): (0, 1)}
    assert rollups(none) == {}
    # A late alert 100 s earlier for the whole incident: 130, 160, 190, 250 s — all bad.
    ingest(alert(at(-100)))
    apply()
    assert rollups(t60) == {m(0): (0, 1), m(60): (0, 2), m(120): (0, 1)}
    assert rollups(t120) == {m(0): (0, 1), m(60): (0, 2), m(120): (0, 1)}


def test_rollback_slos_apply_their_own_window(fleet):
    day = make_slo("rb-24h", "rollback")
    hour = make_slo("rb-1h", "rollback", rollback_window=timedelta(hours=1))
    items = []
    for action in ("r1", "r2", "r3"):
        items += [proposal(action, at(0), incident=None), execution(action, at(60))]
    ingest(*items)
    apply()
    assert rollups(day) == {m(60): (3, 3)}
    assert rollups(hour) == {m(60): (3, 3)}
    # Rollbacks arrive after the executions: r1 2 h later, r2 exactly 1 h later.
    ingest(rollback("r1", at(60 + 7200)), rollback("r2", at(60 + 3600)))
    apply()
    assert rollups(day) == {m(60): (1, 3)}  # only r3 was never rolled back
    assert rollups(hour) == {m(60): (2, 3)}  # r1's rollback came after the hour


def test_late_decision_moves_the_fact_to_its_new_minute(fleet):
    slo = make_slo("acc", "acceptance")
    ingest(proposal("x1", at(0), incident=None), execution("x1", at(30), "started"))
    apply()
    assert rollups(slo) == {}
    # The approval arrives after the execution events.
    ingest(decision("x1", at(20), "approved"))
    apply()
    assert rollups(slo) == {m(0): (1, 1)}
    # A later final decision replaces it: 09:00 empties (its row goes), 09:05 takes it.
    ingest(decision("x1", at(300), "rejected"))
    apply()
    assert rollups(slo) == {m(300): (0, 1)}


def test_accuracy_and_recall_rollups_follow_late_verdicts(fleet):
    accuracy = make_slo("accuracy", "accuracy")
    recall = make_slo("recall", "recall")
    ingest(
        alert(at(0), incident="I1"),
        proposal("p1", at(30), incident="I1"),
        outcome(at(600), True, incident="I1", action="p1"),  # p1 correct by its outcome
        alert(at(0), incident="I2"),
        proposal("p2", at(30), incident="I2"),
        outcome(at(660), True, incident="I2"),  # I2 resolved, p2 has no verdict: recall bad
    )
    apply()
    assert rollups(accuracy) == {m(600): (1, 1)}
    assert rollups(recall) == {m(600): (1, 1), m(660): (0, 1)}
    ingest(verdict("p1", at(900), False), verdict("p2", at(960), True))
    apply()
    assert rollups(accuracy) == {m(900): (0, 1), m(960): (1, 1)}
    assert rollups(recall) == {m(600): (0, 1), m(660): (1, 1)}


def test_applying_twice_counts_once(fleet):
    slo = make_slo("acc", "acceptance")
    ingest(proposal("d1", at(0), incident=None), decision("d1", at(10), "approved"))
    assert apply() == 1
    assert apply() == 0  # the cursor moved: nothing to apply again
    assert rollups(slo) == {m(0): (1, 1)}
    # Even fed the same seals again behind the cursor's back, a fact's difference is zero.
    slo_apply(list(LedgerSeal.objects.all()))
    assert rollups(slo) == {m(0): (1, 1)}
    assert DerivedCursor.objects.get(name="slo").last_seq == LedgerSeal.objects.latest("seq").seq


def test_apply_cost_is_a_fixed_number_of_queries_whatever_the_events(fleet):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite splits bulk writes by its parameter limit")
    make_slo("acc", "acceptance")
    make_slo("ttp", "time_to_propose", threshold=Decimal("60"))
    make_slo("recall", "recall")

    def batch(prefix: str, n: int) -> list[dict[str, Any]]:
        items = []
        for i in range(n):
            incident = f"{prefix}-INC-{i}"
            items += [
                alert(at(i), incident=incident),
                proposal(f"{prefix}-{i}", at(i + 30), incident=incident),
                decision(f"{prefix}-{i}", at(i + 60), "approved"),
                outcome(at(i + 600), True, incident=incident, action=f"{prefix}-{i}"),
            ]
        return items

    ingest(*batch("warm-up", 1))
    apply()  # the first run creates the cursor row
    counts = []
    for prefix, n in (("small", 2), ("large", 50)):
        ingest(*batch(prefix, n))
        with CaptureQueriesContext(connection) as queries:
            apply()
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert counts[0] <= 16, [q["sql"][:80] for q in queries.captured_queries]


def _random_history(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """Lives of n actions across three agents, two versions and shared incidents."""
    items: list[dict[str, Any]] = []
    agents = ["triage-bot", "k8s-healer", "payments-sre"]
    for i in range(n):
        agent = rng.choice(agents)
        version = rng.choice(["1.0.0", "2.0.0"])
        incident = f"R-INC-{i // 2}"
        base = rng.randint(0, 3600)

        def t(s: float, base: int = base) -> datetime:
            return at(base + s)

        if i % 2 == 0 or rng.random() < 0.5:
            items.append(
                alert(
                    t(-rng.randint(0, 300)), incident=incident, agent=agent, agent_version=version
                )
            )
        if rng.random() < 0.3:
            items.append(
                alert(t(-rng.randint(0, 300)), incident=incident, action=f"r{i}", agent=agent)
            )
        if rng.random() < 0.1:
            continue
        items.append(
            proposal(
                f"r{i}",
                t(rng.randint(0, 200)),
                incident=incident,
                agent=agent,
                agent_version=version,
            )
        )
        value = rng.choice(["approved", "approved", "rejected", "denied", "expired", "recorded"])
        items.append(decision(f"r{i}", t(rng.randint(200, 400)), value, agent=agent))
        if rng.random() < 0.2:
            items.append(
                decision(
                    f"r{i}",
                    t(rng.randint(200, 400)),
                    rng.choice(["approved", "rejected"]),
                    agent=agent,
                )
            )
        if value == "approved":
            items.append(
                execution(
                    f"r{i}", t(450), rng.choice(["succeeded", "succeeded", "failed"]), agent=agent
                )
            )
            if rng.random() < 0.3:
                items.append(
                    rollback(f"r{i}", t(450 + rng.choice([600, 3600, 90000])), agent=agent)
                )
        if rng.random() < 0.7:
            resolved = rng.random() < 0.7
            items.append(
                outcome(
                    t(1000 + rng.randint(0, 99)),
                    resolved,
                    incident=incident,
                    action=f"r{i}",
                    agent=agent,
                )
            )
        if rng.random() < 0.3:
            items.append(outcome(t(2000), rng.random() < 0.5, incident=incident, agent=agent))
        if rng.random() < 0.4:
            items.append(
                verdict(f"r{i}", t(3000 + rng.randint(0, 99)), rng.random() < 0.6, agent=agent)
            )
    return items


def test_rebuild_gives_exactly_the_incremental_rollups(fleet):
    platform = fleet["triage-bot"].team
    for kind in ("acceptance", "rollback", "accuracy", "recall"):
        make_slo(f"{kind}-all", kind)
        make_slo(f"{kind}-team", kind, scope="team", team=platform)
        make_slo(
            f"{kind}-agent-v2",
            kind,
            scope="agent",
            agent=fleet["k8s-healer"],
            agent_version="2.0.0",
        )
    make_slo("rb-1h", "rollback", rollback_window=timedelta(hours=1))
    make_slo("ttp-120", "time_to_propose", threshold=Decimal("120"))
    make_slo(
        "ttp-300-team", "time_to_propose", scope="team", team=platform, threshold=Decimal("300")
    )

    rng = random.Random(2026)
    items = _random_history(rng, 80)
    rng.shuffle(items)
    while items:
        size = rng.randint(1, 25)
        ingest(*items[:size])
        items = items[size:]
        if rng.random() < 0.6:
            apply()
    apply()
    incremental = all_rollups()
    facts = set(
        SliFact.objects.filter(counted=True).values_list(
            "kind", "subject", "minute", "good", "value"
        )
    )
    assert sum(t for _, t in incremental.values()) > 100  # the fixture exercises every SLO
    assert {slug for slug, _ in incremental} == set(Slo.objects.values_list("slug", flat=True))

    columns = ("incident_id", "agent_id", "first_alert_at", "first_alert_event_id")
    columns += ("outcome_at", "outcome_event_id", "resolved")
    incidents = set(Incident.objects.values_list(*columns))
    assert len(incidents) == 40

    def rebuild() -> str:
        out = io.StringIO()
        call_command("rebuild_rollups", stdout=out)
        assert set(Incident.objects.values_list(*columns)) == incidents
        assert all_rollups() == incremental
        assert (
            set(SliFact.objects.values_list("kind", "subject", "minute", "good", "value")) == facts
        )
        summary, written = out.getvalue().splitlines()
        assert re.fullmatch(
            rf"Rebuilt 40 incidents, {len(facts)} SLI facts and {len(incremental)} per-minute "
            rf"rollups of 15 SLOs \(ledger seal #{LedgerSeal.objects.latest('seq').seq}\) in "
            r"\d+\.\d s\.",
            summary,
        ), summary
        return written

    if connection.vendor != "postgresql":
        # SQLite empties and refills the tables: the same numbers, every row written.
        assert rebuild().startswith(f"Rows written: 40 incidents, {len(facts)} facts")
        return
    # Over what the consumer wrote: only its rows of facts no longer counted go.
    uncounted = SliFact.objects.filter(counted=False).count()
    assert rebuild() == (
        f"Rows written: 0 incidents, {uncounted} facts, 0 rollups; "
        "the rest already held these numbers."
    )
    # Damage of every kind is repaired, and only the damaged rows are written.
    SloRollup.objects.filter(pk__in=SloRollup.objects.order_by("pk")[:3]).delete()
    SloRollup.objects.filter(pk=SloRollup.objects.order_by("-pk")[0].pk).update(total=999)
    SloRollup.objects.create(slo=Slo.objects.get(slug="ttp-120"), minute=m(-9999), good=1, total=1)
    fact = SliFact.objects.filter(kind="acceptance").order_by("pk")[0]
    SliFact.objects.filter(pk=fact.pk).update(good=not fact.good)
    Incident.objects.filter(pk=Incident.objects.order_by("pk")[0].pk).delete()
    Incident.objects.create(incident_id="phantom", agent=fleet["triage-bot"])
    assert rebuild() == (
        "Rows written: 2 incidents, 1 facts, 5 rollups; the rest already held these numbers."
    )
    # From empty tables (a new database, an upgrade): everything is written, in bulk.
    SloRollup.objects.all().delete()
    SliFact.objects.all().delete()
    Incident.objects.all().delete()
    assert rebuild() == (
        f"Rows written: 40 incidents, {len(facts)} facts, {len(incremental)} rollups."
    )

    # A new SLO rebuilt from the facts alone matches what the consumer would have counted.
    late = make_slo("acceptance-late", "acceptance")
    slo_rollups_rebuild(late)
    assert rollups(late) == rollups(Slo.objects.get(slug="acceptance-all"))
    # And the consumer goes on from the rebuilt state: new events count once.
    before = rollups(late)
    ingest(proposal("new-1", at(0), incident=None), decision("new-1", at(30), "approved"))
    apply()
    after = rollups(late)
    assert after[m(30)][1] == before.get(m(30), (0, 0))[1] + 1


def test_rebuild_leaves_promql_rollups_alone(fleet):
    promql = make_slo("prom", "promql", good_query="up", total_query="up")
    SloRollup.objects.create(slo=promql, minute=m(0), good=5, total=7)
    slo_rollups_rebuild(promql)
    call_command("rebuild_rollups", stdout=io.StringIO())
    assert rollups(promql) == {m(0): (5, 7)}
    assert not SliFact.objects.filter(slo_fact_filter(promql)).exists()
