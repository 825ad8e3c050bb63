import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from apps.actions.models import Action
from apps.audit.canonical import encode_json
from apps.audit.models import EventSource
from apps.audit.services.ingest import ALL_TYPES, agent_lookup_cache, event_batch_ingest
from tests.conftest import event

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _life(action_id="act-1", *, approved=True, rolled_back=False):
    at = lambda minutes: T0 + timedelta(minutes=minutes)  # noqa: E731
    items = [
        event(
            type="alert",
            data={"name": "HighLatency", "severity": "high"},
            ts=at(0),
            action_id=action_id,
            incident_id="INC-1",
        ),
        event(
            type="proposal",
            ts=at(2),
            action_id=action_id,
            incident_id="INC-1",
            data={
                "action_type": "k8s.restart_deployment",
                "target": "k8s://prod/payments/api",
                "risk": "medium",
                "confidence": 0.82,
                "rationale": "pods crash looping",
            },
        ),
        event(
            type="policy_decision",
            ts=at(2),
            action_id=action_id,
            data={
                "decision": "pending_approval",
                "reasons": ["medium risk in prod needs a person"],
                "policy_version": 3,
            },
        ),
        event(
            type="approval",
            ts=at(5),
            action_id=action_id,
            data={"decision": "approved" if approved else "rejected", "by": "ada"},
        ),
        event(type="execution", ts=at(6), action_id=action_id, data={"status": "started"}),
        event(type="execution", ts=at(8), action_id=action_id, data={"status": "succeeded"}),
    ]
    if rolled_back:
        items.append(
            event(type="rollback", ts=at(30), action_id=action_id, data={"status": "succeeded"})
        )
    return items


def _ingest(items):
    return event_batch_ingest(
        items=[encode_json(i) for i in items],
        source=EventSource.IMPORT,
        allowed_types=ALL_TYPES,
        agents_by_slug=agent_lookup_cache(),
    )


def _state(action):
    return {
        f: getattr(action, f)
        for f in (
            "status",
            "decision",
            "decided_by",
            "proposed_at",
            "decided_at",
            "first_alert_at",
            "execution_started_at",
            "execution_finished_at",
            "execution_status",
            "rolled_back_at",
            "policy_violation",
            "risk",
            "confidence",
            "action_type",
            "policy_version",
        )
    }


def test_a_full_life_folds_into_one_action(agent):
    _ingest(_life(rolled_back=True))
    action = Action.objects.get(action_id="act-1")
    assert action.status == "rolled_back"
    assert action.decision == "approved"
    assert action.decided_by == "ada"
    assert action.first_alert_at == T0
    assert action.proposed_at == T0 + timedelta(minutes=2)
    assert action.execution_status == "succeeded"
    assert action.policy_version == "3"
    assert action.policy_violation is False
    assert action.risk == "medium"
    assert action.confidence == 0.82


def test_any_arrival_order_and_batching_gives_the_same_action(agent):
    items = _life(rolled_back=True)
    _ingest(items)
    expected = _state(Action.objects.get(action_id="act-1"))
    rng = random.Random(7)
    for n in range(6):
        action_id = f"act-perm-{n}"
        permuted = _life(action_id, rolled_back=True)
        rng.shuffle(permuted)
        cut = rng.randint(1, len(permuted) - 1)
        for part in (permuted[cut:], permuted[:cut]):
            _ingest(part)
        _ingest(permuted)  # replays change nothing
        assert _state(Action.objects.get(action_id=action_id)) == expected


def test_an_execution_without_approval_is_kept_and_flagged(agent):
    items = [i for i in _life("act-v", approved=False)]
    result = _ingest(items)
    assert result.accepted == len(items)
    action = Action.objects.get(action_id="act-v")
    assert action.decision == "rejected"
    assert action.status == "succeeded"
    assert action.policy_violation is True


def test_an_approval_after_the_execution_is_still_a_violation(agent):
    items = _life("act-late")
    for item in items:
        if item["type"] == "approval":
            item["ts"] = (T0 + timedelta(minutes=7)).isoformat()
    _ingest(items)
    assert Action.objects.get(action_id="act-late").policy_violation is True


def test_pending_until_decided(agent):
    _ingest(_life("act-p")[:3])
    assert Action.objects.get(action_id="act-p").status == "pending_approval"


def test_an_action_id_of_another_agent_is_refused(agent, other_agent):
    _ingest(_life("act-mine")[:2])
    intruder = event(
        agent="k8s-healer", type="execution", action_id="act-mine", data={"status": "started"}
    )
    result = _ingest([intruder])
    assert result.accepted == 0
    assert "another agent" in result.rejected[0]["errors"]["action_id"][0]
    assert list(itertools.chain(Action.objects.values_list("agent__slug", flat=True))) == [
        "triage-bot"
    ]
