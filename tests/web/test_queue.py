"""The approval queue: urgency order, rows, filters, counts, polling, and deciding from it."""

import html
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse

from apps.actions.models import Action
from apps.audit.canonical import encode_json, format_ts
from apps.audit.models import Event, EventSource
from apps.audit.services.ingest import ALL_TYPES, event_batch_ingest
from apps.audit.services.opsdash_events import opsdash_event_record
from apps.fleet.models import Agent, Team

pytestmark = pytest.mark.django_db


def record(agent: Agent, kind: str, data: dict[str, Any], *, ts: datetime, **envelope: Any) -> str:
    """Writes one event as opsdash would (any type), returning its id."""
    item = {
        "id": str(uuid.uuid4()),
        "ts": format_ts(ts),
        "agent": agent.slug,
        "type": kind,
        "data": data,
        **envelope,
    }
    result = event_batch_ingest(
        items=[encode_json(item)],
        source=EventSource.OPSDASH,
        allowed_types=ALL_TYPES,
        agents_by_slug=lambda slug: agent if slug == agent.slug else None,
    )
    assert result.accepted == 1, result.rejected
    return item["id"]


def pending(
    agent: Agent,
    action_id: str,
    risk: str = "medium",
    *,
    age: timedelta = timedelta(minutes=5),
    expires_in: timedelta | None = timedelta(hours=2),
    escalate_in: timedelta | None = timedelta(hours=1),
    env: str = "prod",
    action_type: str = "k8s.restart_deployment",
    target: str = "k8s://prod/payments/api",
    approvers: int | None = None,
    incident_id: str | None = None,
) -> Action:
    """A pending action as POST /api/v1/actions leaves it: proposal + policy decision."""
    now = datetime.now(UTC)
    proposed = now - age
    extra = {"incident_id": incident_id} if incident_id else {}
    record(
        agent,
        "proposal",
        {
            "action_type": action_type,
            "target": target,
            "env": env,
            "risk": risk,
            "confidence": 0.82,
            "rationale": "pods crash-loop since the last deploy",
            "rollback_plan": "redeploy v41",
            "citations": [{"source": "loki", "ref": "api errors"}],
            "parameters": {"replicas": 3},
        },
        ts=proposed,
        action_id=action_id,
        **extra,
    )
    decision: dict[str, Any] = {
        "decision": "pending_approval",
        "reasons": [f"{risk} risk in {env} needs a person."],
        "policy_version": 3,
        "matched_rules": ["prod-needs-person"],
        "effective_risk": risk,
        "approvers_required": approvers or (2 if risk in ("high", "critical") else 1),
    }
    if expires_in is not None:
        decision["expires_at"] = format_ts(now + expires_in)
    if escalate_in is not None:
        decision["escalate_at"] = format_ts(now + escalate_in)
    record(agent, "policy_decision", decision, ts=proposed, action_id=action_id, **extra)
    return Action.objects.get(action_id=action_id)


def order_on(page: str) -> list[str]:
    return [chunk.split('"')[0] for chunk in page.split('data-action-id="')[1:]]


@pytest.fixture
def ada(make_person):
    return make_person("ada", "approver")


@pytest.fixture
def payments(db) -> Agent:
    team = Team.objects.create(slug="payments", name="Payments")
    return Agent.objects.create(slug="payments-sre", team=team, autonomy_mode="suggest")


def test_pending_actions_are_ordered_by_risk_then_time_left_then_age(client, ada, agent):
    pending(agent, "low-soon", "low", expires_in=timedelta(minutes=10))
    pending(agent, "crit-later", "critical", expires_in=timedelta(hours=1, minutes=50))
    pending(agent, "crit-soon", "critical", expires_in=timedelta(minutes=40))
    pending(agent, "high-no-deadline", "high", expires_in=None, age=timedelta(hours=3))
    pending(agent, "high-old", "high", expires_in=timedelta(hours=3), age=timedelta(hours=2))
    pending(agent, "high-young", "high", expires_in=timedelta(hours=3), age=timedelta(minutes=1))
    pending(agent, "medium", "medium")
    client.force_login(ada)
    page = client.get(reverse("actions:queue")).content.decode()
    assert order_on(page) == [
        "crit-soon",
        "crit-later",
        "high-old",
        "high-young",
        "high-no-deadline",
        "medium",
        "low-soon",
    ]


def test_a_row_shows_what_the_approver_needs(client, ada, agent, make_person):
    action = pending(
        agent,
        "act-row",
        "high",
        expires_in=timedelta(hours=1, minutes=20, seconds=30),
        escalate_in=timedelta(minutes=-5),
        target="k8s://prod/payments/api",
    )
    omar = make_person("omar", "approver")
    opsdash_event_record(
        agent=agent,
        event_type="approval",
        action_id=action.action_id,
        data={"decision": "approve", "by": omar.username},
    )
    client.force_login(ada)
    page = client.get(reverse("actions:queue")).content.decode()
    row = page.split('data-action-id="act-row"')[1].split("</li>")[0]
    for text in (
        "triage-bot",
        "platform",
        "k8s.restart_deployment",
        "k8s://prod/payments/api",
        ">prod<",
        '<span class="badge high">high</span>',
        "conf 0.82",
        "1 of 2 approvals",
        "expires in 1h 20m",
        ">escalated<",
    ):
        assert text in row, text
    assert "policy violation" not in row
    assert 'href="/actions/act-row/"' in row


def test_filters_by_team_agent_env_and_risk(client, ada, agent, payments):
    pending(agent, "platform-prod-high", "high")
    pending(payments, "payments-staging-medium", "medium", env="staging")
    pending(payments, "payments-prod-low", "low")
    client.force_login(ada)
    url = reverse("actions:queue")

    def shown(**params):
        return order_on(client.get(url, params).content.decode())

    assert shown(team="payments") == ["payments-staging-medium", "payments-prod-low"]
    assert shown(agent="triage-bot") == ["platform-prod-high"]
    assert shown(env="staging") == ["payments-staging-medium"]
    assert shown(risk="low") == ["payments-prod-low"]
    assert shown(team="payments", risk="high") == []
    # Unknown values are ignored or match nothing; never a 500.
    assert len(shown(risk="bogus")) == 3
    assert shown(team="<script>") == []
    assert client.get(url, {"team": "x" * 5000}).status_code == 200


def test_counts_per_state(client, ada, agent, make_person):
    pending(agent, "p1")
    pending(agent, "p2")
    pending(agent, "to-approve")
    pending(agent, "to-reject")
    from apps.actions.decide import action_decide

    action_decide(action_id="to-approve", user=ada, approve=True)
    action_decide(action_id="to-reject", user=ada, approve=False, reason="wrong service")
    client.force_login(ada)
    page = client.get(reverse("actions:queue")).content.decode()
    counts = page.split('id="queue-counts"')[1].split("</div>")[0]
    assert "<b>2</b> pending" in counts
    assert "<b>1</b> approved" in counts
    assert "<b>1</b> rejected" in counts
    assert "<b>0</b> expired" in counts
    assert "<b>0</b> policy violations" in counts


def test_polling_answers_204_until_the_list_changes(client, ada, agent):
    pending(agent, "first")
    client.force_login(ada)
    url = reverse("actions:queue")
    full = client.get(url).content.decode()
    fingerprint = full.split('data-fingerprint="')[1].split('"')[0]
    unchanged = client.get(url, {"fp": fingerprint}, HTTP_HX_REQUEST="true")
    assert unchanged.status_code == 204
    assert unchanged.content == b""
    pending(agent, "second", "critical")
    changed = client.get(url, {"fp": fingerprint}, HTTP_HX_REQUEST="true")
    body = changed.content.decode()
    assert changed.status_code == 200
    assert "<html" not in body
    assert order_on(body) == ["second", "first"]
    assert 'hx-swap-oob="true"' in body and "<b>2</b> pending" in body  # counts follow


def test_the_list_never_dims_while_polling_and_keeps_filters_in_the_poll_url(client, ada, agent):
    pending(agent, "first")
    client.force_login(ada)
    page = client.get(reverse("actions:queue"), {"risk": "medium"}).content.decode()
    poll = page.split('id="queue-list"')[1].split(">")[0]
    assert 'hx-indicator="#queue-indicator"' in poll
    assert "every 5s" in poll and "queue-changed from:body" in poll
    assert "?risk=medium&amp;fp=" in poll


def test_viewers_may_look_but_not_decide(client, viewer, outsider, agent):
    pending(agent, "act-1")
    client.force_login(viewer)
    page = client.get(reverse("actions:queue")).content.decode()
    assert "act-1" in page
    pane = client.get(reverse("actions:detail", args=["act-1"]), HTTP_HX_REQUEST="true")
    assert "deciding needs the approver role" in pane.content.decode()
    assert "decide-approve" not in pane.content.decode()
    response = client.post(reverse("actions:decide", args=["act-1"]), {"decision": "approve"})
    assert response.status_code == 403
    assert Action.objects.get(action_id="act-1").status == "pending_approval"
    client.force_login(outsider)
    assert client.get(reverse("actions:queue")).status_code == 403


def decide(client, action_id: str, **form: str):
    return client.post(reverse("actions:decide", args=[action_id]), form, HTTP_HX_REQUEST="true")


def test_approving_a_medium_risk_action_from_the_pane(client, ada, agent):
    pending(agent, "act-1")
    client.force_login(ada)
    response = decide(client, "act-1", decision="approve", comment="looks right")
    body = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Trigger"] == "queue-changed"
    assert "Approved. The agent may run it now." in body
    assert "<html" not in body
    action = Action.objects.get(action_id="act-1")
    assert (action.status, action.decided_by) == ("approved", "ada")
    approval = Event.objects.get(action_id="act-1", type="approval")
    assert approval.data["comment"] == "looks right"
    assert "act-1" not in order_on(client.get(reverse("actions:queue")).content.decode())


def test_high_risk_waits_for_a_second_approver(client, ada, agent, make_person):
    pending(agent, "act-h", "high")
    client.force_login(ada)
    first = decide(client, "act-h", decision="approve")
    assert "1 of 2 approvals — waiting for a second approver." in first.content.decode()
    assert Action.objects.get(action_id="act-h").status == "pending_approval"
    again = decide(client, "act-h", decision="approve")
    assert again.status_code == 409
    assert "You already approved this; it needs 2 distinct approvers." in again.content.decode()
    client.force_login(make_person("omar", "approver"))
    second = decide(client, "act-h", decision="approve")
    assert "2 of 2 approvals — approved." in second.content.decode()
    assert Action.objects.get(action_id="act-h").status == "approved"


def test_rejecting_needs_a_reason(client, ada, agent, make_person):
    pending(agent, "act-r")
    client.force_login(ada)
    missing = decide(client, "act-r", decision="reject", reason="   ")
    assert missing.status_code == 400
    assert "A rejection needs a reason" in missing.content.decode()
    assert Action.objects.get(action_id="act-r").status == "pending_approval"
    done = decide(client, "act-r", decision="reject", reason="check the database first")
    assert "Rejected. The agent is told, with your reason: “check the database first”." in (
        done.content.decode()
    )
    action = Action.objects.get(action_id="act-r")
    assert (action.status, action.decision_reasons) == ("rejected", ["check the database first"])
    client.force_login(make_person("omar", "approver"))
    late = decide(client, "act-r", decision="approve")
    assert late.status_code == 409
    assert "Already decided: rejected by ada." in late.content.decode()


def test_separation_of_duties_is_explained(client, agent, make_person):
    owner = make_person("olga", "approver")
    agent.owners.add(owner)
    pending(agent, "act-s")
    Action.objects.filter(action_id="act-s").update(separation_of_duties=True)
    client.force_login(owner)
    body = html.unescape(decide(client, "act-s", decision="approve").content.decode())
    assert "separation of duties: the agent's owners cannot be its only approvers" in body
    assert Action.objects.get(action_id="act-s").status == "pending_approval"


def test_bad_and_hostile_decision_input_gets_a_4xx(client, ada, agent):
    pending(agent, "act-1")
    client.force_login(ada)
    assert decide(client, "act-1", decision="maybe").status_code == 400
    assert "Choose approve or reject." in decide(client, "act-1", decision="").content.decode()
    long = decide(client, "act-1", decision="reject", reason="x" * 2001)
    assert long.status_code == 400
    assert "The reason is too long: at most 2,000 characters." in long.content.decode()
    assert decide(client, "no-such-action", decision="approve").status_code == 404
    assert client.get(reverse("actions:decide", args=["act-1"])).status_code == 405
    assert Action.objects.get(action_id="act-1").status == "pending_approval"
    assert not Event.objects.filter(type="approval").exists()


def test_without_htmx_a_decision_redirects_to_the_action_page_with_the_outcome(client, ada, agent):
    pending(agent, "act-1")
    client.force_login(ada)
    response = client.post(reverse("actions:decide", args=["act-1"]), {"decision": "approve"})
    assert response.status_code == 302
    assert response["Location"] == reverse("actions:detail", args=["act-1"])
    page = client.get(response["Location"]).content.decode()
    assert "Approved. The agent may run it now." in page


def test_the_queue_page_needs_a_fixed_number_of_queries(
    client, ada, agent, payments, django_assert_max_num_queries
):
    for i in range(3):
        pending(agent if i % 2 else payments, f"few-{i}")
    client.force_login(ada)
    client.get(reverse("actions:queue"))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("actions:queue")).status_code == 200
    for i in range(30):
        pending(agent if i % 2 else payments, f"many-{i}", ["low", "high"][i % 2])
    with CaptureQueriesContext(connection) as many:
        assert client.get(reverse("actions:queue")).status_code == 200
    assert len(many) == len(few)
    with django_assert_max_num_queries(19):
        client.get(reverse("actions:queue"), HTTP_HX_REQUEST="true")


def test_the_queue_shows_the_most_urgent_hundred_and_counts_the_rest(client, ada, agent):
    from apps.actions import selectors

    for i in range(5):
        pending(agent, f"a-{i}", "high" if i == 4 else "low")
    client.force_login(ada)
    limited = selectors.pending_queue(
        params=client.get(reverse("actions:queue")).wsgi_request.GET, user=ada, limit=2
    )
    assert limited["rows"][0].action.action_id == "a-4"
    assert (len(limited["rows"]), limited["more"]) == (2, 3)


def test_navigation_shows_the_queue_with_its_count(client, viewer, agent):
    pending(agent, "act-1")
    pending(agent, "act-2")
    client.force_login(viewer)
    page = client.get(reverse("home")).content.decode()
    assert 'href="/actions/queue/"' in page
    assert "Approval queue (2)" in page
