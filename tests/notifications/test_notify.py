"""notify(): who gets what, once, on which channel; the inbox page and the bell."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.fleet.models import Agent
from apps.notifications.models import Notification, WebhookPost
from apps.notifications.services import (
    notification_email_send,
    notify,
    notify_recipients,
    webhook_post_attempt,
)
from apps.notifications.tasks import notifications_outbox_sweep_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_person, django_user_model):
    ada = make_person("ada", "approver")
    ada.email = "ada@example.com"
    ada.save()
    sam = make_person("sam", "sre_lead")
    sam.email = "sam@example.com"
    sam.save()
    make_person("vera", "viewer")
    gone = make_person("gone", "approver")
    gone.is_active = False
    gone.save()
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-1")
    return {"ada": ada, "sam": sam, "root": root}


def _inbox(username):
    return list(
        Notification.objects.filter(recipient__username=username).values_list("title", flat=True)
    )


def test_roles_fan_out_to_active_holders_and_superusers(people):
    users = notify_recipients(roles=["approver"])
    assert sorted(u.username for u in users) == ["ada", "root"]


def test_agent_owners_and_team_owners_are_added(people, agent, make_person):
    olga, tom = make_person("olga"), make_person("tom")
    agent.owners.add(olga)
    agent.team.owners.add(tom)
    Agent.objects.create(slug="other", team=agent.team).owners.add(make_person("nobody"))
    users = notify_recipients(roles=["sre_lead"], agent=agent)
    assert sorted(u.username for u in users) == ["olga", "root", "sam", "tom"]


def test_unknown_role_or_channel_is_refused(people):
    with pytest.raises(ValueError, match="Unknown role"):
        notify(kind="x", title="t", roles=["approvers"])
    with pytest.raises(ValueError, match="Unknown channel"):
        notify(kind="x", title="t", roles=["approver"], channels=["sms"])


def test_the_same_dedup_key_notifies_each_person_once(people, django_capture_on_commit_callbacks):
    for _ in range(2):
        result = notify(
            kind="action_escalated",
            title="Escalated: restart waits",
            body="nobody decided it",
            url="/actions/act-1/",
            roles=["approver"],
            dedup_key="escalate:act-1",
        )
    assert result.recipients == 2
    assert _inbox("ada") == ["Escalated: restart waits"]
    assert _inbox("root") == ["Escalated: restart waits"]
    assert _inbox("sam") == []
    assert Notification.objects.count() == 2


def test_email_is_sent_once_per_person_with_an_absolute_link(
    people, settings, eager_celery, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://opsdash.example.com"
    with django_capture_on_commit_callbacks(execute=True):
        notify(
            kind="policy_violation",
            title="Policy violation: bot executed k8s.scale",
            body="It was never approved.",
            url="/actions/act-9/",
            users=[people["ada"], people["sam"]],
            dedup_key="violation:act-9",
        )
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@example.com", "sam@example.com"]
    message = mail.outbox[0]
    assert message.subject == "[opsdash] Policy violation: bot executed k8s.scale"
    assert message.body == "It was never approved.\n\nhttps://opsdash.example.com/actions/act-9/\n"
    # A retried caller, a retried task and the sweep send nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        notify(
            kind="policy_violation",
            title="again",
            users=[people["ada"]],
            dedup_key="violation:act-9",
        )
    for n in Notification.objects.all():
        assert notification_email_send(notification_id=n.pk) is False
    notifications_outbox_sweep_task()
    assert len(mail.outbox) == 2


def test_a_failed_email_is_released_for_the_retry(people, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    notify(kind="k", title="t", users=[people["ada"]], dedup_key="k:1", channels=["email"])
    n = Notification.objects.get()
    with pytest.raises(OSError):
        notification_email_send(notification_id=n.pk)
    n.refresh_from_db()
    assert n.emailed_at is None
    assert n.email_error.startswith("ConnectionRefusedError")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert notification_email_send(notification_id=n.pk) is True
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]


def test_people_without_an_email_get_the_inbox_only(
    people, make_person, eager_celery, django_capture_on_commit_callbacks
):
    noemail = make_person("nomail", "approver")
    with django_capture_on_commit_callbacks(execute=True):
        notify(kind="k", title="hello", users=[noemail], dedup_key="k:2")
    assert _inbox("nomail") == ["hello"]
    assert mail.outbox == []


def test_the_webhook_gets_slack_json_once(
    people, settings, receiver, eager_celery, django_capture_on_commit_callbacks
):
    settings.NOTIFY_WEBHOOK_URL = receiver.url + "/hooks/T1"
    settings.SITE_URL = "https://opsdash.example.com"
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            notify(
                kind="action_expired",
                title="Expired: <restart> & more",
                body="Not decided within 8h (policy v3)",
                url="/actions/act-1/",
                roles=["approver"],
                dedup_key="expired:act-1",
                channels=["webhook"],
            )
    assert len(receiver.requests) == 1
    sent = receiver.requests[0]
    assert sent.path == "/hooks/T1"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.body) == {
        "text": "Expired: <restart> & more\nNot decided within 8h (policy v3)\n"
        "https://opsdash.example.com/actions/act-1/",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*<https://opsdash.example.com/actions/act-1/|Expired: &lt;restart&gt; "
                    "&amp; more>*\nNot decided within 8h (policy v3)",
                },
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "opsdash · action_expired"}],
            },
        ],
    }
    # Webhook only: nobody's inbox.
    assert Notification.objects.count() == 0
    post = WebhookPost.objects.get()
    assert (post.attempts, post.last_status, post.state) == (1, 200, "delivered")


def test_the_webhook_is_retried_on_5xx_and_429_and_stops_on_4xx(people, settings, receiver):
    settings.NOTIFY_WEBHOOK_URL = receiver.url
    receiver.statuses = [503, 429, 200]
    notify(kind="k", title="retry me", dedup_key="k:r", channels=["webhook"])
    post = WebhookPost.objects.get()
    now = timezone.now()
    assert webhook_post_attempt(post_id=post.pk, now=now) == 30.0
    # Too early for the next attempt: claimed by nobody, nothing sent.
    assert webhook_post_attempt(post_id=post.pk, now=now + timedelta(seconds=10)) is None
    assert webhook_post_attempt(post_id=post.pk, now=now + timedelta(seconds=31)) == 60.0
    assert webhook_post_attempt(post_id=post.pk, now=now + timedelta(seconds=92)) is None
    post.refresh_from_db()
    assert (post.attempts, post.last_status, post.state) == (3, 200, "delivered")
    assert len(receiver.requests) == 3

    receiver.statuses = [404]
    notify(kind="k", title="wrong url", dedup_key="k:404", channels=["webhook"])
    gone = WebhookPost.objects.get(dedup_key="k:404")
    assert webhook_post_attempt(post_id=gone.pk) is None
    gone.refresh_from_db()
    assert (gone.attempts, gone.state, gone.last_error) == (1, "failed", "HTTP 404: try later")


def test_no_webhook_without_a_url(people, settings):
    settings.NOTIFY_WEBHOOK_URL = ""
    assert notify(kind="k", title="t", roles=["approver"]).webhook is False
    assert WebhookPost.objects.count() == 0


def test_inbox_page_mark_read_with_htmx_and_the_bell(people, client):
    notify(kind="action_escalated", title="First", url="/actions/a/", users=[people["ada"]])
    notify(kind="policy_violation", title="Second", users=[people["ada"]])
    notify(kind="policy_violation", title="Not yours", users=[people["sam"]])
    client.force_login(people["ada"])
    page = client.get("/notifications/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "First" in html and "Second" in html and "Not yours" not in html
    assert "2 unread</a>" in html  # the bell in the top bar
    first = Notification.objects.get(title="First")
    response = client.post(f"/notifications/{first.pk}/read/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert f'id="notification-{first.pk}" class="read"' in html
    assert 'hx-swap-oob="true">1 unread</a>' in html
    first.refresh_from_db()
    assert first.read_at is not None
    # Someone else's notification is not found, and stays unread.
    theirs = Notification.objects.get(title="Not yours")
    assert client.post(f"/notifications/{theirs.pk}/read/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert client.get("/notifications/read-all/").status_code == 405
    assert client.post("/notifications/read-all/").status_code == 302
    assert Notification.objects.for_user(people["ada"]).unread().count() == 0
    assert "Nothing unread." in client.get("/notifications/?unread=1").content.decode()


def test_inbox_needs_a_login(client):
    response = client.get("/notifications/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_inbox_page_query_count_does_not_grow(people, client, django_assert_max_num_queries):
    for i in range(30):
        notify(kind="k", title=f"n{i}", users=[people["ada"]])
    client.force_login(people["ada"])
    with django_assert_max_num_queries(12):
        assert client.get("/notifications/").status_code == 200
