"""The demo fleet: a deterministic, believable six weeks of agent activity.

Everything goes through the same ingest service as real traffic, so the demo exercises (and
shows) the real validation, scrubbing, folding and sealing. Later features extend it here.
"""

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apps.audit.canonical import encode_json, format_ts
from apps.core.durations import parse_ttl
from apps.policy.engine import CompiledPolicy
from apps.policy.schema import policy_parse

DEMO_SEED = 20261126


@dataclass(frozen=True)
class DemoAgent:
    slug: str
    team: str
    mode: str
    env: str
    speciality: str


DEMO_TEAMS = [
    ("platform", "Platform Engineering", "CC-1001"),
    ("payments", "Payments SRE", "CC-2040"),
    ("data", "Data Infrastructure", "CC-3300"),
]

DEMO_AGENTS = [
    DemoAgent("triage-bot", "platform", "suggest", "prod", "triage"),
    DemoAgent("k8s-healer", "platform", "auto_low_risk", "prod", "k8s"),
    DemoAgent("cert-rotator", "platform", "auto_low_risk", "prod", "certs"),
    DemoAgent("cost-sweeper", "platform", "suggest", "staging", "cost"),
    DemoAgent("payments-sre", "payments", "suggest", "prod", "k8s"),
    DemoAgent("queue-medic", "payments", "auto_low_risk", "prod", "queues"),
    DemoAgent("db-guardian", "data", "observe", "prod", "db"),
    DemoAgent("log-summariser", "data", "observe", "prod", "triage"),
]

DEMO_PEOPLE = [
    ("viewer", "Vera Viewer", "viewer"),
    ("approver", "Ada Approver", "approver"),
    ("approver2", "Omar Approver", "approver"),
    ("sre", "Sam SRE-lead", "sre_lead"),
    ("finops", "Fay FinOps", "finops"),
    ("admin", "Alex Admin", "admin"),
]
# Clearly a demo credential: seed_demo refuses to create these users with DEBUG off unless told.
DEMO_PASSWORD_SUFFIX = "-demo-pass"

ALERTS = {
    "k8s": [
        ("KubePodCrashLooping", "high"),
        ("KubeDeploymentReplicasMismatch", "warning"),
        ("KubeNodeNotReady", "critical"),
        ("HighLatencyP99", "high"),
    ],
    "certs": [("CertificateExpiringSoon", "warning"), ("TLSHandshakeErrors", "high")],
    "cost": [("IdleComputeDetected", "info"), ("BudgetForecastExceeded", "warning")],
    "queues": [
        ("QueueBacklogGrowing", "high"),
        ("ConsumerLagHigh", "warning"),
        ("DeadLetterQueueNotEmpty", "warning"),
    ],
    "db": [
        ("PostgresReplicationLag", "high"),
        ("PostgresConnectionsSaturated", "critical"),
        ("SlowQueriesSpike", "warning"),
    ],
    "triage": [
        ("ErrorRateBurn", "high"),
        ("HighLatencyP99", "warning"),
        ("DiskFillingUp", "warning"),
    ],
}

ACTIONS = {
    "k8s": [
        ("k8s.restart_deployment", "low"),
        ("k8s.scale_deployment", "medium"),
        ("k8s.rollback_deployment", "high"),
        ("k8s.cordon_node", "high"),
    ],
    "certs": [("certs.renew_certificate", "low"), ("certs.reload_ingress", "medium")],
    "cost": [("cloud.stop_idle_instance", "medium"), ("cloud.resize_instance", "high")],
    "queues": [
        ("queue.scale_consumers", "low"),
        ("queue.replay_dead_letters", "medium"),
        ("queue.purge_queue", "critical"),
    ],
    "db": [
        ("db.kill_long_queries", "medium"),
        ("db.failover_replica", "critical"),
        ("db.vacuum_table", "low"),
    ],
    "triage": [
        ("ticket.create", "low"),
        ("k8s.restart_deployment", "low"),
        ("runbook.execute", "medium"),
    ],
}

SERVICES = ["api", "checkout", "ledger", "search", "auth", "notifications", "billing", "ingest"]
MODELS = [("claude-sonnet-4-5", 0.7), ("claude-haiku-4-5", 0.25), ("claude-opus-4-1", 0.05)]
CONTEXT_SOURCES = [
    "prometheus",
    "loki",
    "kubectl describe",
    "deploy-history",
    "runbook-wiki",
    "pagerduty",
    "tempo traces",
    "cloudwatch",
]
PEOPLE_CONTACTS = ["oncall.payments@example.com", "jane.doe@example.org", "ops-team@example.net"]

LOG_LINES = [
    'level=error msg="upstream connect error" service={svc} pod={svc}-7d9f{n} latency_ms={ms}',
    'level=warn msg="retrying request" attempt={n} target=10.{a}.{b}.{c}:8443 service={svc}',
    'level=info msg="readiness probe failed" container={svc} restarts={n}',
    'level=error msg="OOMKilled" container={svc} limit=512Mi usage=509Mi',
    'level=warn msg="slow query" duration_ms={ms} table=orders rows={n}0000',
    'level=info msg="deploy finished" version=v2.{n}.{b} by=ci-bot commit=3f2a{a}c{b}',
]


@dataclass(frozen=True)
class QueueScenario:
    """A kind of action the demo queue holds at the anchor: what, where, and its evidence."""

    agent: str
    action_type: str
    target: str
    env: str
    risk: str
    confidence: float
    alert: str
    severity: str
    alert_summary: str
    rationale: str
    rollback: str | None
    parameters: dict[str, Any]
    services: tuple[str, ...]
    # (source, uri, summary) of each context read.
    context: tuple[tuple[str, str, str], ...]


QUEUE_SCENARIOS = [
    QueueScenario(
        "k8s-healer",
        "k8s.rollback_deployment",
        "k8s://prod/{svc}/{svc}-deployment",
        "prod",
        "high",
        0.86,
        "KubePodCrashLooping",
        "high",
        "{svc} pods restarting {n} times in 10 minutes since revision {rev}",
        "Pods of {svc} crash-loop with OOMKilled since revision {rev} rolled out; revision "
        "{rev} raised the cache size. Rolling back restores the last healthy revision.",
        "Re-apply revision {rev} with `kubectl rollout undo --to-revision={rev}`.",
        {"to_revision": "{rev}"},
        ("checkout", "search", "api"),
        (
            ("kubectl describe", "k8s://prod/{svc}/pods", "{n} of 6 pods OOMKilled, limit 512Mi"),
            (
                "deploy-history",
                "deploy://{svc}/revisions/{rev}",
                "revision {rev} rolled out 14 minutes ago",
            ),
            ("loki", "loki://prod/{svc}?since=30m", "{n}40 error lines, all after the rollout"),
        ),
    ),
    QueueScenario(
        "payments-sre",
        "k8s.scale_deployment",
        "k8s://prod/payments/{svc}",
        "prod",
        "low",
        0.81,
        "HighLatencyP99",
        "high",
        "p99 latency of {svc} at 2.{n}s for 10 minutes (objective 800 ms)",
        "{svc} saturates its CPU at 6 replicas while checkout traffic is 1.{n}x the weekly peak; "
        "scaling to 10 replicas keeps p99 under the objective.",
        "Scale back to 6 replicas.",
        {"replicas": 10, "previous_replicas": 6},
        ("ledger", "billing", "checkout"),
        (
            (
                "prometheus",
                "promql://histogram_quantile(0.99, {svc})",
                "p99 2.{n}s, CPU 94% on all pods",
            ),
            ("pagerduty", "pd://incidents/{hex}", "paged payments on-call 8 minutes ago"),
        ),
    ),
    QueueScenario(
        "queue-medic",
        "queue.replay_dead_letters",
        "amqp://prod/{svc}-events.dlq",
        "prod",
        "medium",
        0.77,
        "DeadLetterQueueNotEmpty",
        "warning",
        "{n}12 messages in {svc}-events.dlq",
        "The consumer bug behind the dead letters was fixed in the deploy an hour ago; replaying "
        "the {n}12 messages delivers the delayed notifications.",
        "Messages replayed twice are dropped by the idempotency key; nothing to undo.",
        {"max_messages": 5000},
        ("notifications", "billing"),
        (
            ("rabbitmq", "amqp://prod/{svc}-events.dlq", "{n}12 messages, oldest 52 minutes"),
            (
                "deploy-history",
                "deploy://{svc}-consumer",
                "fix for null customer id deployed 61 minutes ago",
            ),
        ),
    ),
    QueueScenario(
        "k8s-healer",
        "k8s.cordon_node",
        "k8s://prod/nodes/ip-10-0-{node}",
        "prod",
        "critical",
        0.72,
        "KubeNodeNotReady",
        "critical",
        "node ip-10-0-{node} NotReady for 6 minutes",
        "Node ip-10-0-{node} flaps NotReady with disk pressure; cordoning it moves new pods to "
        "healthy nodes while the disk is checked.",
        "Uncordon the node.",
        {"drain": False},
        ("ingest", "search"),
        (
            (
                "kubectl describe",
                "k8s://prod/nodes/ip-10-0-{node}",
                "DiskPressure=True, 97% of /var used",
            ),
            ("cloudwatch", "cw://ec2/ip-10-0-{node}/disk", "disk usage +14% in an hour"),
        ),
    ),
    QueueScenario(
        "cert-rotator",
        "certs.reload_ingress",
        "k8s://prod/ingress/{svc}-ingress",
        "prod",
        "medium",
        0.9,
        "TLSHandshakeErrors",
        "high",
        "TLS handshake errors on {svc}-ingress at {n}%",
        "The renewed certificate for {svc} is in the secret but the ingress still serves the old "
        "one, which expires in 2 days; reloading the ingress picks up the new one.",
        "Restore the previous secret version and reload.",
        {},
        ("api", "auth"),
        (
            ("openssl s_client", "tls://{svc}.example.net:443", "served cert expires in 2 days"),
            ("kubectl get secret", "k8s://prod/ingress/{svc}-tls", "secret updated 3 hours ago"),
        ),
    ),
    QueueScenario(
        "cost-sweeper",
        "cloud.resize_instance",
        "aws://staging/ec2/i-0{hex}",
        "staging",
        "high",
        0.64,
        "IdleComputeDetected",
        "info",
        "i-0{hex} below 5% CPU for 14 days",
        "i-0{hex} (m5.4xlarge) averaged 3% CPU for two weeks; an m5.large covers its peak with "
        "room to spare and saves about $480 a month.",
        "Resize back to m5.4xlarge.",
        {"from": "m5.4xlarge", "to": "m5.large"},
        ("search", "ingest"),
        (
            ("cloudwatch", "cw://ec2/i-0{hex}/cpu?days=14", "CPU p95 7%, max 11%"),
            ("cost explorer", "ce://staging/ec2/i-0{hex}", "$553 last month"),
        ),
    ),
    QueueScenario(
        "triage-bot",
        "runbook.execute",
        "runbook://{svc}/disk-cleanup",
        "prod",
        "medium",
        0.55,
        "DiskFillingUp",
        "warning",
        "/var/log on {svc} hosts 91% full, filling in ~3 h",
        "Log rotation on {svc} stopped after the logrotate config change; the disk-cleanup "
        "runbook compresses old logs and restarts logrotate.",
        None,
        {"hosts": "{svc}-*"},
        ("auth", "notifications", "api"),
        (
            (
                "prometheus",
                "promql://node_filesystem_avail_bytes{{service='{svc}'}}",
                "9% free, -3%/h",
            ),
            ("runbook-wiki", "wiki://runbooks/disk-cleanup", "runbook last run 41 days ago"),
        ),
    ),
    QueueScenario(
        "payments-sre",
        "k8s.rollback_deployment",
        "k8s://prod/payments/{svc}",
        "prod",
        "high",
        0.91,
        "ErrorRateBurn",
        "critical",
        "{svc} 5xx at {n}% (budget burn 14x)",
        "Errors on {svc} started with revision {rev}: every failing request hits the new "
        "currency-rounding path. Revision {rev} is the only change in the window.",
        "Roll forward to revision {rev} once fixed.",
        {"to_revision": "{rev}"},
        ("ledger", "checkout"),
        (
            (
                "tempo traces",
                "tempo://prod/{svc}?status=error",
                "all error traces pass round_currency()",
            ),
            (
                "deploy-history",
                "deploy://payments/{svc}/{rev}",
                "revision {rev} rolled out 9 minutes ago",
            ),
            (
                "loki",
                "loki://prod/payments/{svc}",
                "ValueError: invalid rounding mode, {n}31 times",
            ),
        ),
    ),
    QueueScenario(
        "queue-medic",
        "queue.purge_queue",
        "amqp://staging/{svc}-retry",
        "staging",
        "critical",
        0.68,
        "QueueBacklogGrowing",
        "high",
        "{svc}-retry backlog at {n}00k messages",
        "The staging load test left {n}00k synthetic messages in {svc}-retry that block real "
        "test traffic; purging drops only load-test messages.",
        "None possible: purged messages are gone (they are synthetic).",
        {"filter": "header.loadtest=true"},
        ("notifications", "ingest"),
        (
            (
                "rabbitmq",
                "amqp://staging/{svc}-retry",
                "{n}00k messages, 99.8% with loadtest header",
            ),
        ),
    ),
    QueueScenario(
        "triage-bot",
        "k8s.restart_deployment",
        "k8s://prod/{svc}/{svc}-deployment",
        "prod",
        "low",
        0.83,
        "HighLatencyP99",
        "warning",
        "{svc} p99 latency 1.{n}s",
        "{svc} pods hold stale connections to the database after last night's failover; "
        "a rolling restart reconnects them.",
        "Nothing to undo: a rolling restart keeps the same revision.",
        {"strategy": "rolling"},
        ("search", "auth", "api"),
        (
            (
                "prometheus",
                "promql://pg_stat_activity{{app='{svc}'}}",
                "{n}0 connections to the old primary",
            ),
            ("pagerduty", "pd://incidents/{hex}", "DB failover at 02:14 UTC"),
        ),
    ),
]


@dataclass
class DemoBatches:
    """Demo events split by who writes them: agents (API) or opsdash itself."""

    agent_events: list[bytes] = field(default_factory=list)
    opsdash_events: list[bytes] = field(default_factory=list)


def _demo_policy() -> CompiledPolicy:
    from apps.demo.services import DEMO_POLICY

    return CompiledPolicy(policy_parse(DEMO_POLICY.read_text()), version=1)


class DemoFleetGenerator:
    def __init__(
        self,
        *,
        anchor: datetime,
        seed: int = DEMO_SEED,
        days: int = 42,
        incidents_per_day: float = 7.0,
        pending_actions: int = 24,
    ) -> None:
        self.rng = random.Random(seed)
        # Days are laid out up to the anchor's midnight; nothing after the anchor itself is
        # emitted, so a fleet seeded "now" never reports from the future.
        self.cutoff = anchor.astimezone(UTC)
        self.anchor = self.cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
        self.days = days
        self.incidents_per_day = incidents_per_day
        self.pending_actions = pending_actions
        self.policy = _demo_policy()

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _event(
        self,
        agent: DemoAgent,
        kind: str,
        ts: datetime,
        data: dict[str, Any],
        *,
        incident: str | None = None,
        action: str | None = None,
        version: str = "",
    ) -> bytes:
        if ts > self.cutoff:
            return b""
        item: dict[str, Any] = {
            "id": self._uuid(),
            "ts": format_ts(ts),
            "agent": agent.slug,
            "type": kind,
            "data": data,
            "agent_version": version,
            "prompt_version": "p" + version.split(".")[0] if version else "",
        }
        if incident:
            item["incident_id"] = incident
        if action:
            item["action_id"] = action
        return encode_json(item)

    def _log_excerpt(self, svc: str, lines: int) -> str:
        r = self.rng
        return "\n".join(
            r.choice(LOG_LINES).format(
                svc=svc,
                n=r.randint(1, 9),
                ms=r.randint(120, 9000),
                a=r.randint(0, 255),
                b=r.randint(0, 255),
                c=r.randint(1, 254),
            )
            for _ in range(lines)
        )

    def _llm_call(
        self,
        agent: DemoAgent,
        ts: datetime,
        incident: str,
        action: str | None,
        version: str,
        svc: str,
        alert: str,
        purpose: str,
    ) -> bytes:
        r = self.rng
        model = r.choices([m for m, _ in MODELS], weights=[w for _, w in MODELS])[0]
        prompt = (
            f"You are {agent.slug}, an SRE agent. Task: {purpose}.\nAlert: {alert} on service {svc}.\n"
            f"Recent logs:\n{self._log_excerpt(svc, r.randint(8, 22))}\n"
        )
        if r.random() < 0.3:
            prompt += f"Escalation contact: {r.choice(PEOPLE_CONTACTS)}; pager +1415555{r.randint(1000, 9999)}.\n"
        answer = (
            f"Diagnosis: the {svc} pods are failing readiness after the last deploy; error rate rose "
            f"from 0.{r.randint(1, 9)}% to {r.randint(2, 19)}%. Evidence: {r.randint(3, 40)} upstream "
            "connect errors in the last 10 minutes and a matching latency spike.\n"
            + self._log_excerpt(svc, r.randint(3, 8))
        )
        input_tokens = len(prompt) // 4 + r.randint(800, 4000)
        cached = r.choice([0, 0, 1024, 2048])
        return self._event(
            agent,
            "llm_call",
            ts,
            {
                "model": model,
                "provider": "anthropic",
                "input_tokens": input_tokens,
                "output_tokens": r.randint(150, 1200),
                "cache_read_input_tokens": cached,
                "cache_creation_input_tokens": r.choice([0, 0, 0, 512]),
                "latency_ms": r.randint(600, 9000),
                "stop_reason": "end_turn",
                "request": prompt,
                "response": answer,
            },
            incident=incident,
            action=action,
            version=version,
        )

    def _deadlines(self, risk: str, at: datetime) -> dict[str, datetime]:
        """Escalation and expiry as the demo policy sets them for a pending action of `risk`."""
        deadline = getattr(self.policy.document.deadlines, risk)
        return {
            "escalate_at": at + (parse_ttl(deadline.escalate_after or "") or timedelta(hours=1)),
            "expires_at": at + (parse_ttl(deadline.expire_after or "") or timedelta(hours=8)),
        }

    def _pending_queue(self, out: DemoBatches, *, count: int, first_seq: int) -> None:
        """Actions still waiting for a person at the anchor, decided by the demo policy itself
        (reasons, matched rules, approvers, deadlines as POST /api/v1/actions records them),
        each with its alert, context reads and LLM calls; all deadlines lie after the anchor."""
        r = self.rng
        agents = {a.slug: a for a in DEMO_AGENTS}
        made = 0
        for attempt in range(count * 4):
            if made >= count:
                break
            scenario = QUEUE_SCENARIOS[(first_seq + attempt) % len(QUEUE_SCENARIOS)]
            agent = agents[scenario.agent]
            svc = r.choice(scenario.services)
            fill = {
                "svc": svc,
                "n": r.randint(2, 9),
                "rev": r.randint(40, 99),
                "node": f"{r.randint(1, 3)}-{r.randint(10, 250)}",
                "hex": f"{r.getrandbits(32):08x}",
            }
            target = scenario.target.format(**fill)
            confidence = round(min(0.97, max(0.35, r.gauss(scenario.confidence, 0.06))), 2)
            rollback = scenario.rollback.format(**fill) if scenario.rollback else None
            parameters = {
                k: v.format(**fill) if isinstance(v, str) else v
                for k, v in scenario.parameters.items()
            }
            from apps.policy.engine import Proposal

            proposal = Proposal(
                action_type=scenario.action_type,
                target=target,
                env=scenario.env,
                risk=scenario.risk,
                confidence=confidence,
                agent=agent.slug,
                team=agent.team,
                autonomy_mode=agent.mode,
                rollback_plan=rollback,
                parameters=parameters,
            )
            # Proposed early enough to have a history, late enough that it has not expired.
            risk = self.policy.evaluate(proposal, now=self.cutoff).effective_risk
            lifetime = self._deadlines(risk, self.cutoff)
            room = (lifetime["expires_at"] - self.cutoff).total_seconds()
            # Most are younger than their escalation time, as in a queue that is being worked.
            fresh = (lifetime["escalate_at"] - self.cutoff).total_seconds() * 0.9
            oldest = fresh if r.random() < 0.7 else min(room * 0.8, 6 * 3600)
            proposed = self.cutoff - timedelta(seconds=r.uniform(120, max(oldest, 180)))
            decision = self.policy.evaluate(proposal, now=proposed)
            if decision.status != "pending_approval":
                continue
            made += 1
            seq = first_seq + made
            incident = f"INC-{20000 + seq}"
            action = f"act-{self._uuid()[:8]}-q{seq}"
            version = "2.0.0"
            t = proposed - timedelta(seconds=r.randint(240, 1500))
            for _a in range(r.randint(1, 2)):
                out.agent_events.append(
                    self._event(
                        agent,
                        "alert",
                        t,
                        {
                            "name": scenario.alert,
                            "severity": scenario.severity,
                            "source": "alertmanager",
                            "summary": scenario.alert_summary.format(**fill),
                            "labels": {"service": svc, "env": scenario.env},
                        },
                        incident=incident,
                        version=version,
                    )
                )
                t += timedelta(seconds=r.randint(20, 120))
            for source, uri, summary in scenario.context:
                t += timedelta(seconds=r.randint(3, 40))
                out.agent_events.append(
                    self._event(
                        agent,
                        "context",
                        t,
                        {
                            "source": source,
                            "uri": uri.format(**fill),
                            "query": f"{svc} {scenario.alert}",
                            "summary": summary.format(**fill),
                            "bytes": r.randint(800, 60000),
                        },
                        incident=incident,
                        action=action,
                        version=version,
                    )
                )
            for purpose in (
                "summarise the alert",
                "find the likely cause",
                "propose a remediation",
            )[: r.randint(2, 3)]:
                t += timedelta(seconds=r.randint(3, 25))
                out.agent_events.append(
                    self._llm_call(
                        agent, t, incident, action, version, svc, scenario.alert, purpose
                    )
                )
            if r.random() < 0.6:
                t += timedelta(seconds=r.randint(1, 10))
                out.agent_events.append(
                    self._event(
                        agent,
                        "tool_call",
                        t,
                        {
                            "tool": "promql_query",
                            "arguments": {
                                "query": f'rate(http_requests_total{{service="{svc}",code=~"5.."}}[5m])'
                            },
                            "result": {"value": round(r.uniform(0.02, 0.3), 3), "unit": "ratio"},
                            "status": "ok",
                            "latency_ms": r.randint(40, 900),
                        },
                        incident=incident,
                        action=action,
                        version=version,
                    )
                )
            data = {
                "action_type": scenario.action_type,
                "target": target,
                "env": scenario.env,
                "risk": scenario.risk,
                "confidence": confidence,
                "rationale": scenario.rationale.format(**fill),
                "citations": [
                    {"source": source, "ref": uri.format(**fill)}
                    for source, uri, _ in scenario.context[:2]
                ],
                "rollback_plan": rollback,
                "parameters": parameters,
            }
            for kind, ts, payload in (
                ("proposal", proposed, data),
                (
                    "policy_decision",
                    proposed,
                    {
                        "decision": decision.status,
                        "reasons": decision.reasons,
                        "policy_version": 1,
                        "matched_rules": decision.matched_rules,
                        "effective_risk": decision.effective_risk,
                        "approvers_required": decision.approvers_required,
                        "separation_of_duties": decision.separation_of_duties,
                        **{k: format_ts(v) for k, v in decision.deadlines(proposed).items()},
                    },
                ),
            ):
                out.opsdash_events.append(
                    self._event(
                        agent, kind, ts, payload, incident=incident, action=action, version=version
                    )
                )
            # Some two-approver actions already have their first vote.
            if decision.approvers_required > 1 and r.random() < 0.4:
                from apps.actions.services import proposal_arguments_hash

                out.opsdash_events.append(
                    self._event(
                        agent,
                        "approval",
                        proposed + timedelta(seconds=r.randint(30, 90)),
                        {
                            "decision": "approve",
                            "by": "approver2",
                            "comment": "Evidence matches; needs a second pair of eyes.",
                            "proposal_hash": proposal_arguments_hash(data),
                        },
                        incident=incident,
                        action=action,
                        version=version,
                    )
                )

    def batches_by_day(self) -> Iterator[DemoBatches]:
        """One DemoBatches per day, oldest first."""
        r = self.rng
        start = self.anchor - timedelta(days=self.days)
        approvers = ["approver", "approver2", "sre"]
        seq = 0
        for day in range(self.days):
            day_start = start + timedelta(days=day)
            out = DemoBatches()
            count = max(1, int(r.gauss(self.incidents_per_day, 2)))
            for _ in range(count):
                seq += 1
                agent = r.choice(DEMO_AGENTS)
                version = "2.0.0" if day >= self.days * 2 // 3 else "1.4.0"
                incident = f"INC-{10000 + seq}"
                t = day_start + timedelta(seconds=r.randint(0, 86000))
                svc = r.choice(SERVICES)
                alert_name, severity = r.choice(ALERTS[agent.speciality])
                human_only = r.random() < 0.12
                for _a in range(r.randint(1, 3)):
                    out.agent_events.append(
                        self._event(
                            agent,
                            "alert",
                            t,
                            {
                                "name": alert_name,
                                "severity": severity,
                                "source": "alertmanager",
                                "summary": f"{alert_name} firing for {svc} in {agent.env}",
                                "labels": {"service": svc, "env": agent.env},
                            },
                            incident=incident,
                            version=version,
                        )
                    )
                    t += timedelta(seconds=r.randint(5, 90))
                if human_only:
                    t += timedelta(minutes=r.randint(10, 120))
                    out.agent_events.append(
                        self._event(
                            agent,
                            "outcome",
                            t,
                            {
                                "resolved": True,
                                "resolved_by": "human",
                                "summary": "Resolved by the on-call engineer without the agent.",
                            },
                            incident=incident,
                            version=version,
                        )
                    )
                    continue
                action = f"act-{self._uuid()[:8]}-{seq}"
                read_sources: list[str] = []
                for _c in range(r.randint(1, 4)):
                    t += timedelta(seconds=r.randint(2, 40))
                    read_sources.append(r.choice(CONTEXT_SOURCES))
                    out.agent_events.append(
                        self._event(
                            agent,
                            "context",
                            t,
                            {
                                "source": read_sources[-1],
                                "query": f"{svc} errors last 30m",
                                "summary": f"{r.randint(10, 900)} lines about {svc}",
                                "bytes": r.randint(500, 90000),
                            },
                            incident=incident,
                            action=action,
                            version=version,
                        )
                    )
                for purpose in (
                    "summarise the alert",
                    "find the likely cause",
                    "propose a remediation",
                )[: r.randint(2, 3)]:
                    t += timedelta(seconds=r.randint(2, 30))
                    out.agent_events.append(
                        self._llm_call(
                            agent, t, incident, action, version, svc, alert_name, purpose
                        )
                    )
                if r.random() < 0.5:
                    t += timedelta(seconds=r.randint(1, 10))
                    out.agent_events.append(
                        self._event(
                            agent,
                            "tool_call",
                            t,
                            {
                                "tool": r.choice(
                                    ["kubectl_get", "promql_query", "loki_query", "runbook_lookup"]
                                ),
                                "arguments": {"service": svc},
                                "status": "ok",
                                "latency_ms": r.randint(40, 2500),
                            },
                            incident=incident,
                            action=action,
                            version=version,
                        )
                    )
                action_type, risk = r.choice(ACTIONS[agent.speciality])
                confidence = round(min(0.99, max(0.3, r.gauss(0.78, 0.12))), 2)
                t += timedelta(seconds=r.randint(5, 60))
                out.opsdash_events.append(
                    self._event(
                        agent,
                        "proposal",
                        t,
                        {
                            "action_type": action_type,
                            "target": f"k8s://{agent.env}/{svc}/{svc}-deployment",
                            "env": agent.env,
                            "risk": risk,
                            "confidence": confidence,
                            "rationale": f"{alert_name} on {svc}: errors started right after the last rollout; "
                            f"{action_type} is the runbook's first step.",
                            # What the agent read, and now and then a log file it never
                            # read: the hallucination flags have something real to find.
                            "citations": [
                                {"source": source, "ref": f"{svc} errors last 30m"}
                                for source in dict.fromkeys(read_sources)
                            ][:2]
                            + (
                                [{"source": "loki", "path": f"/var/log/{svc}/error.log:1042"}]
                                if seq % 13 == 0
                                else []
                            ),
                            "rollback_plan": "Re-apply the previous revision."
                            if r.random() < 0.85
                            else None,
                            "parameters": {"service": svc, "replicas": r.randint(2, 12)},
                        },
                        incident=incident,
                        action=action,
                        version=version,
                    )
                )
                # The decision.
                t += timedelta(seconds=1)
                if agent.mode == "observe":
                    out.opsdash_events.append(
                        self._event(
                            agent,
                            "policy_decision",
                            t,
                            {
                                "decision": "recorded",
                                "reasons": ["Agent is in observe mode: recorded, never executed."],
                                "policy_version": 1,
                            },
                            incident=incident,
                            action=action,
                            version=version,
                        )
                    )
                    decision = "recorded"
                elif agent.mode == "auto_low_risk" and risk == "low":
                    out.opsdash_events.append(
                        self._event(
                            agent,
                            "policy_decision",
                            t,
                            {
                                "decision": "approved",
                                "reasons": [
                                    f"Allowed: {action_type} is low risk and the agent may act alone."
                                ],
                                "policy_version": 1,
                            },
                            incident=incident,
                            action=action,
                            version=version,
                        )
                    )
                    decision = "approved"
                elif risk == "critical" and r.random() < 0.4:
                    out.opsdash_events.append(
                        self._event(
                            agent,
                            "policy_decision",
                            t,
                            {
                                "decision": "denied",
                                "reasons": [
                                    f"Denied: {action_type} is blacklisted in {agent.env}."
                                ],
                                "policy_version": 1,
                            },
                            incident=incident,
                            action=action,
                            version=version,
                        )
                    )
                    decision = "denied"
                else:
                    deadlines = self._deadlines(risk, t)
                    out.opsdash_events.append(
                        self._event(
                            agent,
                            "policy_decision",
                            t,
                            {
                                "decision": "pending_approval",
                                "reasons": [f"{risk} risk in {agent.env} needs a person."],
                                "policy_version": 1,
                                "effective_risk": risk,
                                "approvers_required": 2 if risk in ("high", "critical") else 1,
                                **{k: format_ts(v) for k, v in deadlines.items()},
                            },
                            incident=incident,
                            action=action,
                            version=version,
                        )
                    )
                    if day == self.days - 1 and r.random() < 0.6:
                        # Nobody decided in time: it expired (the queue's live part is below).
                        out.opsdash_events.append(
                            self._event(
                                agent,
                                "approval",
                                deadlines["expires_at"],
                                {
                                    "decision": "expired",
                                    "by": "opsdash",
                                    "reason": "Not decided before the policy's deadline.",
                                },
                                incident=incident,
                                action=action,
                                version=version,
                            )
                        )
                        continue
                    t += timedelta(minutes=r.randint(1, 45))
                    approve = confidence > 0.6 and r.random() < 0.8
                    decision = "approved" if approve else "rejected"
                    out.opsdash_events.append(
                        self._event(
                            agent,
                            "approval",
                            t,
                            {
                                "decision": decision,
                                "by": r.choice(approvers),
                                "reason": ""
                                if approve
                                else "Evidence does not support this; check the DB first.",
                            },
                            incident=incident,
                            action=action,
                            version=version,
                        )
                    )
                if decision != "approved":
                    t += timedelta(minutes=r.randint(5, 90))
                    out.agent_events.append(
                        self._event(
                            agent,
                            "outcome",
                            t,
                            {"resolved": r.random() < 0.7, "resolved_by": "human"},
                            incident=incident,
                            action=action,
                            version=version,
                        )
                    )
                    continue
                t += timedelta(seconds=r.randint(2, 30))
                out.agent_events.append(
                    self._event(
                        agent,
                        "execution",
                        t,
                        {"status": "started", "detail": action_type},
                        incident=incident,
                        action=action,
                        version=version,
                    )
                )
                failed = r.random() < 0.08
                t += timedelta(seconds=r.randint(5, 300))
                out.agent_events.append(
                    self._event(
                        agent,
                        "execution",
                        t,
                        {
                            "status": "failed" if failed else "succeeded",
                            "error": "timeout waiting for rollout" if failed else "",
                        },
                        incident=incident,
                        action=action,
                        version=version,
                    )
                )
                rolled_back = not failed and r.random() < (
                    0.12 if version.startswith("2") else 0.05
                )
                if rolled_back:
                    t += timedelta(minutes=r.randint(3, 60))
                    out.agent_events.append(
                        self._event(
                            agent,
                            "rollback",
                            t,
                            {"status": "succeeded", "reason": "error rate rose after the change"},
                            incident=incident,
                            action=action,
                            version=version,
                        )
                    )
                t += timedelta(minutes=r.randint(2, 30))
                resolved = not failed and not rolled_back
                out.agent_events.append(
                    self._event(
                        agent,
                        "outcome",
                        t,
                        {"resolved": resolved, "resolved_by": "agent" if resolved else "human"},
                        incident=incident,
                        action=action,
                        version=version,
                    )
                )
                if r.random() < 0.35:
                    t += timedelta(hours=r.randint(1, 20))
                    out.opsdash_events.append(
                        self._event(
                            agent,
                            "verdict",
                            t,
                            {"correct": resolved or r.random() < 0.3, "by": r.choice(approvers)},
                            incident=incident,
                            action=action,
                            version=version,
                        )
                    )
            if day == self.days - 1:
                self._pending_queue(out, count=self.pending_actions, first_seq=seq + 1)
            out.agent_events = [e for e in out.agent_events if e]
            out.opsdash_events = [e for e in out.opsdash_events if e]
            yield out
