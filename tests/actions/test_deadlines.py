"""Escalation and expiry of pending actions, and the policy-violation notification."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.actions.deadlines import deadlines_sweep
from apps.actions.decide import DecisionRefused, action_decide
from apps.actions.models import Action
from apps.actions.propose import ProposalIn, action_propose
from apps.actions.tasks import deadlines_sweep_task
from apps.audit.models import Event
from apps.fleet.services import agent_token_mint
from apps.notifications.models import CallbackDelivery, Notification
from apps.policy.services import policy_version_create
from tests.conftest import event, post_batch
from tests.notifications.conftest import receiver  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db

POLICY = (
    "deadlines:\n"
    "  medium: {escalate_after: 30m, expire_after: 2h}\n"
    "  high: {escalate_after: 10m, expire_after: 1h}\n"
    "  escalate_to: approver\n"
)


def _propose(agent, action_id, ago, risk="medium"):
    return action_propose(
        agent=agent,
        proposal=ProposalIn(
            action_id=action_id,
            action_type="k8s.restart_deployment",
            target="k8s://prod/payments/api",
            env="prod",
            risk=risk,
            confidence=0.8,
            rollback_plan="redeploy",
        ),
        now=timezone.now() - ago,
    ).action


@pytest.fixture(autouse=True)
def _fresh_policy_cache():
    # active_policy() caches by (pk, number); SQLite reuses both after a test's rollback, so an
    # earlier test's v1 would decide here. PostgreSQL never reuses a pk.
    from apps.policy.selectors import _compiled

    _compiled.cache_clear()


@pytest.fixture
def crew(agent, make_person):
    policy_version_create(source=POLICY)
    people = {
        "ada": make_person("ada", "approver"),
        "sam": make_person("sam", "sre_lead"),
        "olga": make_person("olga"),
        "tom": make_person("tom"),
    }
    people["ada"].email = "ada@example.com"
    people["ada"].save()
    agent.owners.add(people["olga"])
    agent.team.owners.add(people["tom"])
    return people


def _notified(kind):
    return sorted(
        Notification.objects.filter(kind=kind).values_list("recipient__username", "dedup_key")
    )


def test_escalation_notifies_the_policys_role_once(agent, crew):
    _propose(agent, "act-late", ago=timedelta(minutes=45))
    _propose(agent, "act-fresh", ago=timedelta(minutes=5))
    assert deadlines_sweep().escalated == 1
    assert deadlines_sweep().escalated == 0
    assert deadlines_sweep_task() == {"expired": 0, "escalated": 0}
    assert _notified("action_escalated") == [("ada", "escalate:act-late")]
    late = Action.objects.get(action_id="act-late")
    assert late.status == "pending_approval"
    assert late.escalated_at is not None
    assert Action.objects.get(action_id="act-fresh").escalated_at is None
    n = Notification.objects.get(kind="action_escalated")
    assert n.url == "/actions/act-late/"
    assert n.title == "Escalated: k8s.restart_deployment by triage-bot waits for approval"
    assert n.body.startswith(
        "triage-bot proposed k8s.restart_deployment on k8s://prod/payments/api (medium risk); "
        "nobody has decided it within 30m (policy v1). It expires at "
    )


def test_the_escalation_role_comes_from_the_deciding_version(agent, crew):
    _propose(agent, "act-v1", ago=timedelta(minutes=45))
    # A newer version escalates to sre_lead; the action was decided under v1.
    policy_version_create(source=POLICY.replace("escalate_to: approver", "escalate_to: sre_lead"))
    _propose(agent, "act-v2", ago=timedelta(minutes=45))
    deadlines_sweep()
    assert _notified("action_escalated") == [
        ("ada", "escalate:act-v1"),
        ("sam", "escalate:act-v2"),
    ]


def test_expiry_decides_expired_and_tells_agent_and_owners(
    agent,
    crew,
    receiver,  # noqa: F811
    eager_celery,
    django_capture_on_commit_callbacks,
):
    agent.callback_url, agent.callback_secret = receiver.url + "/cb", "k" * 64
    agent.save()
    _propose(agent, "act-1", ago=timedelta(hours=3))
    with django_capture_on_commit_callbacks(execute=True):
        result = deadlines_sweep()
    # Past both deadlines: decided, not escalated.
    assert (result.expired, result.escalated) == (1, 0)
    action = Action.objects.get(action_id="act-1")
    assert (action.status, action.decided_by) == ("expired", "opsdash")
    assert action.decision_reasons == ["Not decided within 2h (policy v1)"]
    approval = Event.objects.get(action_id="act-1", type="approval")
    assert approval.data == {
        "decision": "expired",
        "by": "opsdash",
        "reason": "Not decided within 2h (policy v1)",
    }
    # The agent's long-poll answers at once, and its callback fired once.
    _, raw = agent_token_mint(agent=agent, scopes=["actions:propose"], ttl=timedelta(hours=1))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = api.get("/api/v1/actions/act-1?wait=5").json()
    assert (body["status"], body["reasons"]) == ("expired", ["Not decided within 2h (policy v1)"])
    [received] = receiver.requests
    assert received.headers["x-opsdash-delivery"] == str(approval.pk)
    assert b'"status":"expired"' in received.body
    assert CallbackDelivery.objects.get().state == "delivered"
    # The owners are told, not the approvers.
    assert _notified("action_expired") == [("olga", "expired:act-1"), ("tom", "expired:act-1")]
    n = Notification.objects.filter(kind="action_expired").first()
    assert n.title == "Expired: k8s.restart_deployment by triage-bot was not decided"
    # A second sweep changes nothing; an approver arriving late is told what happened.
    assert deadlines_sweep().expired == 0
    assert Event.objects.filter(action_id="act-1", type="approval").count() == 1
    with pytest.raises(DecisionRefused, match="Already decided: expired by opsdash"):
        action_decide(action_id="act-1", user=crew["ada"], approve=True)


def test_a_decided_action_never_expires(agent, crew):
    _propose(agent, "act-1", ago=timedelta(hours=3))
    action_decide(action_id="act-1", user=crew["ada"], approve=True)
    assert deadlines_sweep().expired == 0
    assert Action.objects.get(action_id="act-1").status == "approved"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_expire_and_notify_once(
    agent,
    crew,
    receiver,  # noqa: F811
    eager_celery,
):
    agent.callback_url, agent.callback_secret = receiver.url + "/cb", "k" * 64
    agent.save()
    ids = [f"act-{i}" for i in range(6)]
    for action_id in ids:
        _propose(agent, action_id, ago=timedelta(hours=3))
    _propose(agent, "act-esc", ago=timedelta(minutes=45))
    barrier = threading.Barrier(2)
    results, errors = [], []

    def sweep():
        try:
            barrier.wait()
            results.append(deadlines_sweep())
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.expired for r in results) == 6
    assert sum(r.escalated for r in results) == 1
    assert Event.objects.filter(type="approval", data__decision="expired").count() == 6
    assert set(Action.objects.filter(action_id__in=ids).values_list("status", flat=True)) == {
        "expired"
    }
    assert Notification.objects.filter(kind="action_expired").count() == 6 * 2  # olga and tom
    assert _notified("action_escalated") == [("ada", "escalate:act-esc")]
    assert sorted(r.headers["x-opsdash-delivery"] for r in receiver.requests) == sorted(
        str(pk) for pk in Event.objects.filter(type="approval").values_list("pk", flat=True)
    )
    assert CallbackDelivery.objects.filter(delivered_at__isnull=False).count() == 6


def test_an_execution_without_approval_notifies_once(
    agent,
    crew,
    settings,
    receiver,  # noqa: F811
    eager_celery,
    django_capture_on_commit_callbacks,
):
    settings.NOTIFY_WEBHOOK_URL = receiver.url + "/slack"
    _propose(agent, "act-1", ago=timedelta(minutes=5))
    _, raw = agent_token_mint(agent=agent, scopes=["events:write"], ttl=timedelta(hours=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_batch(
            client, [event(type="execution", data={"status": "started"}, action_id="act-1")]
        )
    assert response.json()["accepted"] == 1
    assert Action.objects.get(action_id="act-1").policy_violation
    # approvers, SRE leads and the agent's (and its team's) owners
    assert _notified("policy_violation") == [
        ("ada", "violation:act-1"),
        ("olga", "violation:act-1"),
        ("sam", "violation:act-1"),
        ("tom", "violation:act-1"),
    ]
    n = Notification.objects.filter(kind="policy_violation").first()
    assert n.title == (
        "Policy violation: triage-bot executed k8s.restart_deployment on "
        "k8s://prod/payments/api without approval"
    )
    assert "it was still waiting for approval" in n.body
    assert n.url == "/actions/act-1/"
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
    assert mail.outbox[0].subject == f"[opsdash] {n.title}"
    [slack] = receiver.requests
    assert slack.path == "/slack"
    # More executions of the same action add nothing.
    with django_capture_on_commit_callbacks(execute=True):
        post_batch(
            client, [event(type="execution", data={"status": "succeeded"}, action_id="act-1")]
        )
    assert Notification.objects.filter(kind="policy_violation").count() == 4
    assert len(mail.outbox) == 1 and len(receiver.requests) == 1


def test_an_approved_execution_is_not_a_violation(agent, crew, client):
    _propose(agent, "act-1", ago=timedelta(minutes=5))
    action_decide(action_id="act-1", user=crew["ada"], approve=True)
    _, raw = agent_token_mint(agent=agent, scopes=["events:write"], ttl=timedelta(hours=1))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    started = timezone.now() + timedelta(seconds=1)  # after the approval
    post_batch(
        api,
        [event(type="execution", data={"status": "started"}, action_id="act-1", ts=started)],
    )
    assert not Action.objects.get(action_id="act-1").policy_violation
    assert Notification.objects.filter(kind="policy_violation").count() == 0
