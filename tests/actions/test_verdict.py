"""A person judges a proposal correct or incorrect once its result is known."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from apps.actions.models import Action
from apps.actions.verdict import VerdictRefused, action_verdict_record
from apps.audit.models import Event
from tests.web.test_queue import pending, record

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(make_person):
    return make_person("ada", "approver")


def test_a_verdict_before_any_result_is_refused(agent, ada):
    pending(agent, "act-1")
    with pytest.raises(VerdictRefused, match="once the action has an outcome or a finished"):
        action_verdict_record(action_id="act-1", user=ada, correct=True)
    assert not Event.objects.filter(type="verdict").exists()
    record(agent, "execution", {"status": "started"}, ts=datetime.now(UTC), action_id="act-1")
    with pytest.raises(VerdictRefused, match="it is executing"):
        action_verdict_record(action_id="act-1", user=ada, correct=True)


def test_after_the_outcome_the_verdict_is_an_event_folded_into_the_action(agent, ada):
    pending(agent, "act-1")
    record(agent, "outcome", {"resolved": True}, ts=datetime.now(UTC), action_id="act-1")
    action = action_verdict_record(
        action_id="act-1", user=ada, correct=False, note="  the real cause was the DB  "
    )
    assert (action.verdict_correct, action.verdict_by) == (False, "ada")
    event = Event.objects.get(type="verdict", action_id="act-1")
    assert event.data == {"correct": False, "by": "ada", "note": "the real cause was the DB"}
    assert event.source == "opsdash"


def test_a_finished_execution_is_enough_and_a_later_verdict_replaces_it(agent, ada, make_person):
    pending(agent, "act-1")
    now = datetime.now(UTC)
    record(agent, "execution", {"status": "started"}, ts=now, action_id="act-1")
    record(agent, "execution", {"status": "failed"}, ts=now, action_id="act-1")
    action_verdict_record(action_id="act-1", user=ada, correct=True)
    action_verdict_record(action_id="act-1", user=make_person("omar", "approver"), correct=False)
    action = Action.objects.get(action_id="act-1")
    assert (action.verdict_correct, action.verdict_by) == (False, "omar")
    assert Event.objects.filter(type="verdict", action_id="act-1").count() == 2


def test_unknown_action_and_oversized_note_are_refused(agent, ada):
    with pytest.raises(VerdictRefused, match="No action 'nope'"):
        action_verdict_record(action_id="nope", user=ada, correct=True)
    pending(agent, "act-1")
    record(agent, "outcome", {"resolved": True}, ts=datetime.now(UTC), action_id="act-1")
    with pytest.raises(VerdictRefused, match="at most 2000 characters"):
        action_verdict_record(action_id="act-1", user=ada, correct=True, note="x" * 2001)


def test_the_verdict_form_on_the_action_page(client, agent, ada, viewer):
    pending(agent, "act-1")
    url = reverse("actions:verdict", args=["act-1"])
    client.force_login(ada)
    early = client.post(url, {"correct": "1"}, HTTP_HX_REQUEST="true")
    assert early.status_code == 409
    assert "Not yet: a proposal can be judged once the action has an outcome" in (
        early.content.decode()
    )
    record(agent, "outcome", {"resolved": True}, ts=datetime.now(UTC), action_id="act-1")
    bad = client.post(url, {"correct": "maybe"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 400
    assert "Choose correct or incorrect." in bad.content.decode()
    done = client.post(url, {"correct": "1", "note": "spot on"}, HTTP_HX_REQUEST="true")
    body = done.content.decode()
    assert done.status_code == 200
    assert "Recorded: the proposal was correct." in body
    assert 'Judged <span class="badge ok">correct</span> by ada' in body
    assert Action.objects.get(action_id="act-1").verdict_correct is True
    client.force_login(viewer)
    assert client.post(url, {"correct": "0"}).status_code == 403
    assert Action.objects.get(action_id="act-1").verdict_correct is True
