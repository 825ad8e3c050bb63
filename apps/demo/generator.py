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


@dataclass
class DemoBatches:
    """Demo events split by who writes them: agents (API) or opsdash itself."""

    agent_events: list[bytes] = field(default_factory=list)
    opsdash_events: list[bytes] = field(default_factory=list)


class DemoFleetGenerator:
    def __init__(
        self,
        *,
        anchor: datetime,
        seed: int = DEMO_SEED,
        days: int = 42,
        incidents_per_day: float = 7.0,
    ) -> None:
        self.rng = random.Random(seed)
        # Days are laid out up to the anchor's midnight; nothing after the anchor itself is
        # emitted, so a fleet seeded "now" never reports from the future.
        self.cutoff = anchor.astimezone(UTC)
        self.anchor = self.cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
        self.days = days
        self.incidents_per_day = incidents_per_day

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
                for _c in range(r.randint(1, 4)):
                    t += timedelta(seconds=r.randint(2, 40))
                    out.agent_events.append(
                        self._event(
                            agent,
                            "context",
                            t,
                            {
                                "source": r.choice(CONTEXT_SOURCES),
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
                            "citations": [
                                {"source": "loki", "ref": f"{svc} errors"},
                                {"source": "runbook-wiki", "ref": action_type},
                            ],
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
                    out.opsdash_events.append(
                        self._event(
                            agent,
                            "policy_decision",
                            t,
                            {
                                "decision": "pending_approval",
                                "reasons": [f"{risk} risk in {agent.env} needs a person."],
                                "policy_version": 1,
                            },
                            incident=incident,
                            action=action,
                            version=version,
                        )
                    )
                    if day == self.days - 1 and r.random() < 0.6:
                        continue  # still waiting in the queue
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
            out.agent_events = [e for e in out.agent_events if e]
            out.opsdash_events = [e for e in out.opsdash_events if e]
            yield out
