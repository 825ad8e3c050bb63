"""Agent decision callbacks: signed, retried with backoff, delivered once per decision event."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.actions.callbacks import callback_delivery_attempt
from apps.actions.decide import action_decide
from apps.actions.models import Action
from apps.actions.propose import ProposalIn, action_propose
from apps.actions.tasks import callback_deliver_task, callbacks_sweep_task
from apps.audit.models import Event
from apps.notifications.models import CallbackDelivery
from apps.policy.services import policy_version_create
from tests.conftest import free_port
from tests.notifications.conftest import receiver  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-" + "a" * 57
POLICY = "rules:\n  - id: k8s-ops\n    effect: allow\n    match: {action_type: 'k8s.*'}\n"


def _propose(agent, action_id="act-1", risk="low", **extra):
    return action_propose(
        agent=agent,
        proposal=ProposalIn(
            action_id=action_id,
            action_type="k8s.restart_deployment",
            target="k8s://prod/payments/api",
            env="prod",
            risk=risk,
            confidence=0.9,
            rollback_plan="redeploy",
            parameters={"replicas": 3},
            **extra,
        ),
    ).action


@pytest.fixture
def hooked(agent, receiver):  # noqa: F811 - fixture
    agent.callback_url = receiver.url + "/opsdash/decisions"
    agent.callback_secret = SECRET
    agent.autonomy_mode = "auto_low_risk"
    agent.save()
    policy_version_create(source=POLICY)
    return agent


def _verify(received, secret=SECRET):
    """What an agent author writes (README): check the signature over the raw body."""
    fields = dict(p.split("=", 1) for p in received.headers["x-opsdash-signature"].split(","))
    t = int(fields["t"])
    expected = hmac.new(secret.encode(), f"{t}.".encode() + received.body, hashlib.sha256)
    return abs(time.time() - t) < 300 and hmac.compare_digest(expected.hexdigest(), fields["v1"])


def test_a_policy_approval_at_proposal_time_calls_the_agent_back(
    hooked,
    receiver,  # noqa: F811
    eager_celery,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True) as queued:
        action = _propose(hooked)
    assert action.status == "approved"
    assert len(queued) >= 1  # sent after the commit, not inside the proposal's transaction
    [received] = receiver.requests
    assert received.path == "/opsdash/decisions"
    decision = Event.objects.get(action_id="act-1", type="policy_decision")
    assert received.headers["x-opsdash-delivery"] == str(decision.pk)
    assert received.headers["content-type"] == "application/json"
    assert _verify(received)
    assert not _verify(received, secret="another-secret")
    assert (
        received.body
        == json.dumps(
            {
                "action_id": "act-1",
                "decided_at": decision.ts.isoformat().replace("+00:00", "Z"),
                "decided_by": "policy",
                "decision_event_id": str(decision.pk),
                "policy_version": 1,
                "reasons": action.decision_reasons,
                "status": "approved",
            },
            separators=(",", ":"),
        ).encode()
    )
    assert json.loads(received.body)["reasons"][0].startswith("Approved by the policy")
    delivery = CallbackDelivery.objects.get()
    assert (delivery.attempts, delivery.last_status, delivery.state) == (1, 200, "delivered")
    # The task run again (a redelivered message, the sweep) posts nothing.
    callback_deliver_task(delivery.pk)
    callbacks_sweep_task()
    assert len(receiver.requests) == 1


def test_failures_then_success_deliver_once_with_the_attempt_count(hooked, receiver):  # noqa: F811
    receiver.statuses = [503, 502, 429, 200]
    _propose(hooked)  # no on_commit here: attempts are driven by hand, with the clock
    delivery = CallbackDelivery.objects.get()
    now = timezone.now()
    delays = []
    for _ in range(4):
        delay = callback_delivery_attempt(delivery_id=delivery.pk, now=now)
        delays.append(delay)
        now += timedelta(seconds=delay or 0)
    assert delays == [30.0, 60.0, 120.0, None]
    for _ in range(3):
        assert (
            callback_delivery_attempt(delivery_id=delivery.pk, now=now + timedelta(hours=1)) is None
        )
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_status, delivery.state) == (4, 200, "delivered")
    assert CallbackDelivery.objects.filter(delivered_at__isnull=False).count() == 1
    assert len(receiver.requests) == 4
    # Every retry carries the same body and delivery id; each is signed afresh.
    assert len({r.body for r in receiver.requests}) == 1
    assert len({r.headers["x-opsdash-delivery"] for r in receiver.requests}) == 1
    assert all(_verify(r) for r in receiver.requests)


def test_a_4xx_stops_at_once_and_the_attempts_run_out_on_5xx(hooked, receiver, settings):  # noqa: F811
    receiver.statuses = [410]
    _propose(hooked, action_id="act-gone")
    gone = CallbackDelivery.objects.get(action__action_id="act-gone")
    assert callback_delivery_attempt(delivery_id=gone.pk) is None
    gone.refresh_from_db()
    assert (gone.attempts, gone.state, gone.last_status) == (1, "failed", 410)

    settings.CALLBACK_MAX_ATTEMPTS = 3
    receiver.statuses = [500] * 5
    _propose(hooked, action_id="act-down")
    down = CallbackDelivery.objects.get(action__action_id="act-down")
    now = timezone.now()
    for _ in range(5):
        now += timedelta(seconds=callback_delivery_attempt(delivery_id=down.pk, now=now) or 3600)
    down.refresh_from_db()
    assert (down.attempts, down.state, down.last_error) == (3, "failed", "HTTP 500: try later")
    assert len(receiver.requests) == 1 + 3


def test_a_network_error_is_retried(agent, make_person):
    agent.callback_url = f"http://127.0.0.1:{free_port()}/cb"
    agent.callback_secret = SECRET
    agent.save()
    _propose(agent)  # suggest mode: pending, no decision yet
    assert CallbackDelivery.objects.count() == 0
    action_decide(
        action_id="act-1",
        user=make_person("ada", "approver"),
        approve=False,
        reason="not now",
    )
    delivery = CallbackDelivery.objects.get()
    assert json.loads(delivery.body)["status"] == "rejected"
    assert json.loads(delivery.body)["decided_by"] == "ada"
    assert json.loads(delivery.body)["reasons"] == ["not now"]
    assert callback_delivery_attempt(delivery_id=delivery.pk) == 30.0
    delivery.refresh_from_db()
    assert delivery.state == "retrying"
    assert delivery.last_error.startswith("ConnectError")


def test_agents_without_a_callback_get_no_delivery_and_replays_add_none(agent, hooked):
    other = type(agent).objects.create(slug="quiet-bot", team=agent.team, autonomy_mode="observe")
    _propose(other, action_id="act-quiet")
    assert Action.objects.get(action_id="act-quiet").status == "recorded"
    _propose(hooked, action_id="act-2")
    _propose(hooked, action_id="act-2")  # the agent retries its POST: the same answer
    assert list(CallbackDelivery.objects.values_list("action__action_id", flat=True)) == ["act-2"]


def test_denied_and_recorded_are_final_decisions_too(hooked):
    policy_version_create(
        source=POLICY + "  - id: no-db\n    effect: deny\n    match: {action_type: 'db.*'}\n"
    )
    action_propose(
        agent=hooked,
        proposal=ProposalIn(
            action_id="act-db",
            action_type="db.drop_table",
            target="db://prod/x",
            env="prod",
            risk="low",
            confidence=0.9,
        ),
    )
    hooked.autonomy_mode = "observe"
    hooked.save()
    _propose(hooked, action_id="act-obs")
    statuses = {
        json.loads(d.body)["action_id"]: json.loads(d.body)["status"]
        for d in CallbackDelivery.objects.all()
    }
    assert statuses == {"act-db": "denied", "act-obs": "recorded"}


def test_a_removed_callback_stops_pending_retries(hooked, receiver):  # noqa: F811
    from apps.actions.callbacks import agent_callback_clear

    _propose(hooked)
    agent_callback_clear(agent=hooked)
    delivery = CallbackDelivery.objects.get()
    assert callback_delivery_attempt(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.state, delivery.last_error) == ("failed", "The callback was removed.")
    assert receiver.requests == []


# ---------- the admin UI on the agent page ----------


def test_admin_sets_rotates_and_clears_the_callback(agent, admin_person, client, settings):
    client.force_login(admin_person)
    url = f"/fleet/agents/{agent.slug}/callback/"
    response = client.post(url, {"op": "set", "url": "https://agent.example.com/cb"})
    html = response.content.decode()
    assert response.status_code == 200
    agent.refresh_from_db()
    assert agent.callback_url == "https://agent.example.com/cb"
    assert len(agent.callback_secret) == 64
    assert f'<pre id="new-callback-secret" class="mono">{agent.callback_secret}</pre>' in html
    # Shown once: the page never shows it again.
    assert agent.callback_secret not in client.get(f"/fleet/agents/{agent.slug}/").content.decode()
    # Changing the URL keeps the secret.
    first = agent.callback_secret
    assert client.post(url, {"op": "set", "url": "https://agent.example.com/v2"}).status_code == 302
    agent.refresh_from_db()
    assert (agent.callback_url, agent.callback_secret) == ("https://agent.example.com/v2", first)
    html = client.post(url, {"op": "rotate"}).content.decode()
    agent.refresh_from_db()
    assert agent.callback_secret != first
    assert agent.callback_secret in html
    assert client.post(url, {"op": "clear"}).status_code == 302
    agent.refresh_from_db()
    assert (agent.callback_url, agent.callback_secret) == ("", "")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("http://agent.example.com/cb", "Use an https:// URL"),
        ("https://169.254.169.254/latest/meta-data/", "link-local or metadata address"),
        ("https://[fe80::1]/cb", "link-local or metadata address"),
        ("https://[::ffff:169.254.169.254]/cb", "link-local or metadata address"),
        ("https://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
        ("not a url", "Enter a valid URL"),
        ("https://agent.example.com/" + "x" * 600, "at most 500 characters"),
    ],
)
def test_hostile_callback_urls_are_refused(agent, admin_person, client, given, message):
    client.force_login(admin_person)
    response = client.post(f"/fleet/agents/{agent.slug}/callback/", {"op": "set", "url": given})
    assert response.status_code == 400
    assert message in response.content.decode()
    agent.refresh_from_db()
    assert agent.callback_url == ""


def test_http_is_allowed_in_debug_only(agent, admin_person, client, settings):
    settings.DEBUG = True
    client.force_login(admin_person)
    client.post(
        f"/fleet/agents/{agent.slug}/callback/", {"op": "set", "url": "http://127.0.0.1:9/cb"}
    )
    agent.refresh_from_db()
    assert agent.callback_url == "http://127.0.0.1:9/cb"


def test_only_admins_change_callbacks(agent, make_person, client):
    client.force_login(make_person("ada", "approver", "sre_lead"))
    response = client.post(
        f"/fleet/agents/{agent.slug}/callback/", {"op": "set", "url": "https://a.example.com/"}
    )
    assert response.status_code == 403
    agent.refresh_from_db()
    assert agent.callback_url == ""


def test_the_agent_page_lists_recent_deliveries(hooked, receiver, admin_person, client):  # noqa: F811
    receiver.statuses = [503]
    _propose(hooked)
    delivery = CallbackDelivery.objects.get()
    callback_delivery_attempt(delivery_id=delivery.pk)
    client.force_login(admin_person)
    html = client.get(f"/fleet/agents/{hooked.slug}/").content.decode()
    assert '<span class="badge warn">retrying</span>' in html
    assert "HTTP 503" in html
    assert str(delivery.decision_event_id) in html
    assert hooked.callback_url in html
    assert SECRET not in html


def test_the_sweep_requeues_a_delivery_whose_message_was_lost(
    hooked,
    receiver,  # noqa: F811
    eager_celery,
):
    _propose(hooked)  # committed without running on_commit: as if the broker lost the message
    delivery = CallbackDelivery.objects.get()
    assert callbacks_sweep_task() == 0  # not overdue yet: its queued task may still come
    CallbackDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=3)
    )
    assert callbacks_sweep_task() == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("delivered", 1)
    assert len(receiver.requests) == 1


def test_the_readme_snippet_verifies_a_real_delivery(
    hooked,
    receiver,  # noqa: F811
    eager_celery,
    django_capture_on_commit_callbacks,
):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Agent callbacks", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 - our own documentation
    verified = namespace["opsdash_verified"]
    with django_capture_on_commit_callbacks(execute=True):
        _propose(hooked)
    [received] = receiver.requests
    signature = received.headers["x-opsdash-signature"]
    assert verified(received.body, signature, SECRET) is True
    assert verified(received.body + b" ", signature, SECRET) is False
    assert verified(received.body, signature, "wrong") is False
    assert verified(received.body, "garbage", SECRET) is False
