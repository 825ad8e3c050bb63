"""The demo fleet leaves a realistic queue: pending actions with future deadlines and evidence."""

from datetime import UTC, datetime

import pytest

from apps.actions.models import Action
from apps.audit.models import Event
from apps.demo.services import demo_fleet_seed

pytestmark = pytest.mark.django_db

ANCHOR = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def test_the_demo_queue_is_full_of_realistic_pending_actions():
    demo_fleet_seed(anchor=ANCHOR, days=2, incidents_per_day=4)
    queue = list(Action.objects.filter(status="pending_approval", action_id__contains="-q"))
    assert len(queue) == 24
    assert all(a.expires_at and a.expires_at > ANCHOR for a in queue)
    assert all(a.escalate_at and a.decision_reasons and a.policy_version for a in queue)
    risks = {a.effective_risk for a in queue}
    assert {"medium", "high", "critical"} <= risks
    two_people = [a for a in queue if a.effective_risk in ("high", "critical")]
    assert two_people and all(a.approvers_required == 2 for a in two_people)
    assert any(len(a.approvals) == 1 for a in two_people)  # one vote in, one to go
    for action in queue:
        types = set(Event.objects.filter(action_id=action.action_id).values_list("type", flat=True))
        assert {"context", "llm_call", "proposal", "policy_decision"} <= types
        assert Event.objects.filter(incident_id=action.incident_id, type="alert").exists()
    # Every pending action, from the queue or the history, has a deadline after the anchor.
    assert not Action.objects.filter(status="pending_approval", expires_at__lte=ANCHOR).exists()
