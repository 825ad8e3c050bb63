"""SLI facts and the Incident read model, from events ingested through the real ingest and
applied by the derived consumer "slo"; every figure is worked out by hand in the comments."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from apps.actions.models import Incident
from apps.audit.canonical import encode_json
from apps.audit.models import EventSource
from apps.audit.services.derived import derived_catch_up
from apps.audit.services.ingest import ALL_TYPES, agent_lookup_cache, event_batch_ingest
from apps.costs.models import ModelPrice
from apps.slo.models import SliFact
from apps.slo.rebuild import rollups_rebuild_all
from tests.conftest import event

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ingest(*items: dict[str, Any]) -> None:
    """One batch through the real ingest (folds the Action read model and seals)."""
    result = event_batch_ingest(
        items=[encode_json(i) for i in items],
        source=EventSource.IMPORT,
        allowed_types=ALL_TYPES,
        agents_by_slug=agent_lookup_cache(),
    )
    assert result.rejected == [], result.rejected
    assert result.accepted == len(items)


def apply() -> int:
    return derived_catch_up(names=["slo"])


def alert(ts: datetime, *, incident: str | None = "INC-1", action: str | None = None, **kw: Any):
    fields: dict[str, Any] = {}
    if incident:
        fields["incident_id"] = incident
    if action:
        fields["action_id"] = action
    return event(
        type="alert", data={"name": "HighLatency", "severity": "high"}, ts=ts, **fields, **kw
    )


def proposal(action: str, ts: datetime, *, incident: str | None = "INC-1", **kw: Any):
    fields: dict[str, Any] = {"action_id": action}
    if incident:
        fields["incident_id"] = incident
    data = {
        "action_type": "k8s.restart",
        "target": "k8s://prod/api",
        "risk": "low",
        "confidence": 0.8,
    }
    return event(type="proposal", data=data, ts=ts, **fields, **kw)


def decision(action: str, ts: datetime, value: str, **kw: Any):
    if value in ("approved", "rejected", "expired"):
        return event(
            type="approval", data={"decision": value, "by": "ada"}, ts=ts, action_id=action, **kw
        )
    return event(type="policy_decision", data={"decision": value}, ts=ts, action_id=action, **kw)


def execution(action: str, ts: datetime, status: str = "succeeded", **kw: Any):
    return event(type="execution", data={"status": status}, ts=ts, action_id=action, **kw)


def rollback(action: str, ts: datetime, **kw: Any):
    return event(type="rollback", data={"status": "succeeded"}, ts=ts, action_id=action, **kw)


def outcome(
    ts: datetime,
    resolved: bool,
    *,
    incident: str | None = "INC-1",
    action: str | None = None,
    **kw: Any,
):
    fields: dict[str, Any] = {}
    if incident:
        fields["incident_id"] = incident
    if action:
        fields["action_id"] = action
    return event(type="outcome", data={"resolved": resolved}, ts=ts, **fields, **kw)


def verdict(action: str, ts: datetime, correct: bool, **kw: Any):
    return event(
        type="verdict", data={"correct": correct, "by": "ada"}, ts=ts, action_id=action, **kw
    )


def facts(kind: str) -> dict[str, tuple[Any, ...]]:
    """{subject: (minute, good, value)} of the counted facts of one kind."""
    return {
        f.subject: (f.minute, f.good, f.value)
        for f in SliFact.objects.filter(kind=kind, counted=True)
    }


def m(seconds: float) -> datetime:
    """The minute bucket of T0 + seconds."""
    return at(seconds).replace(second=0, microsecond=0)


# --- Incident read model ----------------------------------------------------------------------


def test_incident_keeps_the_earliest_alert_its_agent_and_the_latest_outcome(agent, other_agent):
    first, second = alert(at(60)), alert(at(0), agent="k8s-healer")
    ingest(first, outcome(at(600), False))
    apply()
    incident = Incident.objects.get(incident_id="INC-1")
    assert (incident.first_alert_at, incident.agent.slug) == (at(60), "triage-bot")
    assert (incident.outcome_at, incident.resolved) == (at(600), False)
    # Late: an earlier alert by another agent, and a later outcome that resolves it.
    ingest(second, outcome(at(900), True))
    apply()
    incident.refresh_from_db()
    assert str(incident.first_alert_event_id) == second["id"]
    assert (incident.first_alert_at, incident.agent.slug) == (at(0), "k8s-healer")
    assert (incident.outcome_at, incident.resolved) == (at(900), True)
    # An outcome older than the deciding one changes nothing.
    ingest(outcome(at(700), False))
    apply()
    incident.refresh_from_db()
    assert (incident.outcome_at, incident.resolved) == (at(900), True)


def test_incident_is_the_same_in_any_order_and_batching(agent, other_agent):
    rng = random.Random(11)
    for n in range(4):
        incident = f"INC-7{n}"
        items = [
            alert(at(30), incident=incident),
            alert(at(10), incident=incident, agent="k8s-healer"),
            alert(at(10), incident=incident),  # same ts: the smaller event id wins
            outcome(at(500), True, incident=incident),
            outcome(at(500), False, incident=incident),  # same ts: the larger event id wins
            outcome(at(400), True, incident=incident),
        ]
        first = min(items[1:3], key=lambda i: i["id"])
        deciding = max(items[3:5], key=lambda i: i["id"])
        rng.shuffle(items)
        if n % 2:
            ingest(*items)
        else:
            for item in items:
                ingest(item)
                apply()
        apply()
        row = Incident.objects.get(incident_id=incident)
        assert (
            row.first_alert_at,
            str(row.first_alert_event_id),
            row.agent.slug,
            row.outcome_at,
            str(row.outcome_event_id),
            row.resolved,
        ) == (
            at(10),
            first["id"],
            first["agent"],
            at(500),
            deciding["id"],
            deciding["data"]["resolved"],
        )


# --- Facts, one SLI kind at a time ----------------------------------------------------------


def test_time_to_propose_from_the_earlier_of_the_action_and_incident_alerts(agent):
    ingest(
        alert(at(0)),  # the incident's first alert (no action)
        proposal("a1", at(95)),  # 95 s after it
        alert(at(100), incident="INC-2", action="a2"),  # the action's own alert
        proposal("a2", at(130), incident="INC-2"),  # 30 s
        proposal("a3", at(140), incident="INC-3"),  # no alert anywhere: not counted
    )
    apply()
    assert facts("time_to_propose") == {
        "a1": (m(95), None, Decimal("95.000000")),
        "a2": (m(130), None, Decimal("30.000000")),
    }
    # Late and out of order: an earlier incident alert for INC-2 (10 s before the action's),
    # and INC-3's first alert, 2.5 s before its proposal.
    ingest(alert(at(90), incident="INC-2"), alert(at(137.5), incident="INC-3"))
    apply()
    assert facts("time_to_propose") == {
        "a1": (m(95), None, Decimal("95.000000")),
        "a2": (m(130), None, Decimal("40.000000")),
        "a3": (m(140), None, Decimal("2.500000")),
    }


def test_acceptance_counts_approved_rejected_denied_only(agent):
    items = []
    for n, value in enumerate(
        ["approved", "rejected", "denied", "expired", "recorded", "pending_approval"]
    ):
        items += [
            proposal(f"d{n}", at(10 * n), incident=None),
            decision(f"d{n}", at(10 * n + 65), value),
        ]
    ingest(*items)
    apply()
    assert facts("acceptance") == {
        "d0": (m(65), True, None),
        "d1": (m(75), False, None),
        "d2": (m(85), False, None),
    }
    # A later final decision replaces the earlier one: d3 expired, then (late) rejected at 200.
    ingest(decision("d3", at(200), "rejected"))
    apply()
    assert facts("acceptance")["d3"] == (m(200), False, None)


def test_rollback_value_is_seconds_from_the_successful_execution(agent):
    ingest(
        proposal("r1", at(0), incident=None),
        execution("r1", at(60), "started"),
        execution("r1", at(120)),
        proposal("r2", at(0), incident=None),
        execution("r2", at(130), "failed"),
    )
    apply()
    assert facts("rollback") == {"r1": (m(120), True, None)}
    # The rollback arrives after the execution (late): 2 h 0 min 30 s later.
    ingest(rollback("r1", at(120 + 7230)))
    apply()
    # `good` by the default 24 h window (each SLO applies its own to the value).
    assert facts("rollback") == {"r1": (m(120), False, Decimal("7230.000000"))}


def test_accuracy_prefers_the_verdict_and_buckets_at_its_time(agent):
    ingest(
        proposal("c1", at(0), incident=None),
        outcome(at(300), True, incident=None, action="c1"),
        proposal("c2", at(0), incident=None),
        outcome(at(310), False, incident=None, action="c2"),
        proposal("c3", at(0), incident=None),
    )
    apply()
    assert facts("accuracy") == {"c1": (m(300), True, None), "c2": (m(310), False, None)}
    # A person's verdict arrives later and overrules the outcome of c1.
    ingest(verdict("c1", at(4000), False), verdict("c3", at(4100), True))
    apply()
    assert facts("accuracy") == {
        "c1": (m(4000), False, None),
        "c2": (m(310), False, None),
        "c3": (m(4100), True, None),
    }


def test_recall_counts_resolved_incidents_good_when_an_action_is_correct(agent):
    ingest(
        alert(at(0), incident="I1"),
        proposal("p1", at(30), incident="I1"),
        outcome(at(600), True, incident="I1"),  # resolved; p1 has no verdict yet: bad
        alert(at(0), incident="I2"),
        outcome(at(700), True, incident="I2"),  # resolved by a human, no action: bad
        alert(at(0), incident="I3"),
        outcome(at(800), False, incident="I3"),  # not resolved: not counted
    )
    apply()
    assert facts("recall") == {"I1": (m(600), False, None), "I2": (m(700), False, None)}
    # A verdict on p1 (an action of I1) arrives: I1's recall turns good, at its outcome time.
    ingest(verdict("p1", at(5000), True))
    apply()
    assert facts("recall") == {"I1": (m(600), True, None), "I2": (m(700), False, None)}
    # I3 is resolved later on.
    ingest(outcome(at(900), True, incident="I3"))
    apply()
    assert facts("recall")["I3"] == (m(900), False, None)


def test_recall_is_counted_for_the_first_alerts_version_even_when_it_arrives_late(agent):
    ingest(alert(at(60), agent_version="2.0.0"), outcome(at(600), True))
    apply()
    assert Incident.objects.get(incident_id="INC-1").agent_version == "2.0.0"
    assert SliFact.objects.get(kind="recall", subject="INC-1").agent_version == "2.0.0"
    # An earlier alert, seen late, by the old version: the incident and its recall move to it.
    ingest(alert(at(0), agent_version="1.9.0"))
    apply()
    assert Incident.objects.get(incident_id="INC-1").agent_version == "1.9.0"
    assert SliFact.objects.get(kind="recall", subject="INC-1").agent_version == "1.9.0"
    # A later alert by a newer version changes nothing.
    ingest(alert(at(30), agent_version="3.0.0"))
    apply()
    assert SliFact.objects.get(kind="recall", subject="INC-1").agent_version == "1.9.0"


def test_facts_carry_agent_team_and_the_proposals_version(agent):
    ingest(alert(at(0)), proposal("v1", at(10), agent_version="2.0.0"))
    apply()
    fact = SliFact.objects.get(kind="time_to_propose", subject="v1")
    assert (fact.agent.slug, fact.team.slug, fact.agent_version) == (
        "triage-bot",
        "platform",
        "2.0.0",
    )


def llm(action: str, ts: datetime, model: str = "test-model", **tokens: int):
    data = {"model": model, "input_tokens": 0, "output_tokens": 0, "latency_ms": 800} | tokens
    return event(type="llm_call", data=data, ts=ts, action_id=action)


def test_cost_and_energy_facts_sum_the_actions_llm_calls(agent):
    ModelPrice.objects.create(
        provider="anthropic",
        model="test-model",
        effective_from=T0,
        input_usd_per_mtok=Decimal("3"),
        output_usd_per_mtok=Decimal("15"),
        cache_write_5m_usd_per_mtok=Decimal("3.75"),
        cache_write_1h_usd_per_mtok=Decimal("6"),
        cache_read_usd_per_mtok=Decimal("0.3"),
    )
    ingest(alert(at(0)), proposal("k1", at(10)), proposal("k2", at(20)), proposal("k3", at(30)))
    apply()
    # No llm_call yet: no action's cost is known.
    assert facts("cost_per_action") == {}
    assert facts("energy_per_action") == {}
    # The calls arrive after the proposals (as they do): their actions' facts follow.
    ingest(
        llm("k1", at(40), input_tokens=1000, output_tokens=500),
        llm("k1", at(50), input_tokens=2000),
        llm("k2", at(60), model="no-price-model", output_tokens=100),
    )
    apply()
    # k1: (1,000 x 3 + 500 x 15 + 2,000 x 3) / 1e6 = 16,500 / 1e6 = 0.0165 USD; k2 has an
    # unpriced call, so its cost is unknown; k3 has no calls.
    assert facts("cost_per_action") == {"k1": (m(10), None, Decimal("0.016500"))}
    # Energy (0.22 Wh per 1k input, 0.6 per 1k output, PUE 1.2):
    # k1: (3 x 0.22 + 0.5 x 0.6) x 1.2 = 1.152 Wh; k2: 0.1 x 0.6 x 1.2 = 0.072 Wh
    assert facts("energy_per_action") == {
        "k1": (m(10), None, Decimal("1.152000")),
        "k2": (m(20), None, Decimal("0.072000")),
    }
    # A reported cost half a micro-dollar over: rounded half up, here and in the rebuild.
    ingest(llm("k3", at(70), cost_usd="0.0000125"))
    apply()
    assert facts("cost_per_action")["k3"] == (m(30), None, Decimal("0.000013"))
    # A rebuild from the read models gives the same facts.
    before = (facts("cost_per_action"), facts("energy_per_action"))
    rollups_rebuild_all()
    assert (facts("cost_per_action"), facts("energy_per_action")) == before
    SliFact.objects.filter(kind__in=["cost_per_action", "energy_per_action"]).delete()
    rollups_rebuild_all()
    assert (facts("cost_per_action"), facts("energy_per_action")) == before
