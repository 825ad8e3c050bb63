"""Deciding from Slack: signed requests only, the same rules and the same audit event."""

import json
import time

import pytest

from apps.actions.decide import action_decide
from apps.actions.models import Action
from apps.audit.models import Event
from apps.chatops.models import SlackInteraction, SlackMessage, SlackUserLink
from apps.policy.services import policy_version_create
from tests.chatops.conftest import INTERACTIONS_URL, recorded, signed_headers

pytestmark = pytest.mark.django_db

ADA, OMAR, VERA = "U0ADA0001", "U0OMAR002", "U0VERA003"


def _click(slack, verdict, user=ADA, action_id="act-1", trigger=None):
    payload = recorded(
        f"block_actions_{verdict}", user=user, action_id=action_id, response_url=slack.response_url
    )
    if trigger:
        payload["trigger_id"] = trigger
    return payload


def _ephemerals(slack):
    return [c["text"] for c in slack.of("response_url")]


def _updates(slack):
    return slack.of("chat.update")


def _status_line(update):
    return update["blocks"][0]["text"]["text"]


def _has_buttons(update):
    return any(b["type"] == "actions" for b in update["blocks"])


def _approvals(action_id="act-1"):
    return list(
        Event.objects.filter(action_id=action_id, type="approval")
        .order_by("ts", "id")
        .values_list("data", flat=True)
    )


# --- the endpoint refuses what is not Slack's ------------------------------------------------


def test_off_without_settings_says_which_are_missing(client, settings):
    settings.SLACK_SIGNING_SECRET = settings.SLACK_BOT_TOKEN = ""
    settings.SLACK_APPROVALS_CHANNEL = ""
    response = client.post(INTERACTIONS_URL, data="payload=%7B%7D", content_type="x/y")
    assert response.status_code == 404
    assert response.json()["error"] == (
        "Slack approvals are off on this opsdash: set SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN, "
        "SLACK_APPROVALS_CHANNEL."
    )


def test_a_bad_signature_is_refused(slack_on, agent, propose, ada, client):
    propose(agent)
    body = "payload=" + json.dumps(_click(slack_on, "approve"))
    headers = signed_headers(body, secret="not-the-signing-secret")
    response = client.post(
        INTERACTIONS_URL, data=body, content_type="application/x-www-form-urlencoded", **headers
    )
    assert response.status_code == 401
    assert response.json()["error"] == (
        "The Slack signature does not match this body (check SLACK_SIGNING_SECRET)."
    )
    assert Action.objects.get(action_id="act-1").status == "pending_approval"


def test_a_body_changed_after_signing_is_refused(slack_on, agent, propose, ada, client):
    propose(agent)
    body = "payload=" + json.dumps(_click(slack_on, "approve"))
    headers = signed_headers(body)
    response = client.post(
        INTERACTIONS_URL,
        data=body.replace("act-1", "act-2"),
        content_type="application/x-www-form-urlencoded",
        **headers,
    )
    assert response.status_code == 401


def test_a_stale_timestamp_is_refused_as_a_replay(slack_on, agent, propose, ada, client):
    propose(agent)
    body = "payload=" + json.dumps(_click(slack_on, "approve"))
    headers = signed_headers(body, timestamp=int(time.time()) - 301)
    response = client.post(
        INTERACTIONS_URL, data=body, content_type="application/x-www-form-urlencoded", **headers
    )
    assert response.status_code == 401
    assert "more than 5 minutes from now: refused as a possible replay" in response.json()["error"]
    assert _approvals() == []


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "The request is not signed"),
        ({"HTTP_X_SLACK_SIGNATURE": "v0=abc"}, "The request is not signed"),
        (
            {"HTTP_X_SLACK_SIGNATURE": "v0=abc", "HTTP_X_SLACK_REQUEST_TIMESTAMP": "9" * 5000},
            "must be a Unix time",
        ),
        (
            {"HTTP_X_SLACK_SIGNATURE": "v0=abc", "HTTP_X_SLACK_REQUEST_TIMESTAMP": "yesterday"},
            "must be a Unix time",
        ),
    ],
)
def test_unsigned_requests_are_refused(slack_on, client, headers, error):
    response = client.post(
        INTERACTIONS_URL,
        data="payload=%7B%7D",
        content_type="application/x-www-form-urlencoded",
        **headers,
    )
    assert response.status_code == 401
    assert error in response.json()["error"]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("", "no payload field"),
        ("text=hello", "no payload field"),
        ("payload=", "no payload field"),
        ("payload=%7Bnot-json", "is not valid JSON"),
        ("payload=%5B1%2C2%5D", "is not a Slack interaction payload"),
        ("payload=%7B%22type%22%3A5%7D", "is not a Slack interaction payload"),
        ("a=1&&&b", "must be form-encoded"),
        ("payload=%ff%fe", "must be form-encoded"),
    ],
)
def test_malformed_bodies_get_a_400_never_a_500(slack_on, post_slack, raw, error):
    response = post_slack(None, raw=raw)
    assert response.status_code == 400
    assert error in response.json()["error"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda p: p.pop("user"), "missing required field `user`"),
        (lambda p: p.update(actions={"a": 1}), "Expected `array`"),
        (lambda p: p.update(trigger_id=""), "trigger_id"),
        (lambda p: p["actions"][0].update(value=""), "button carries no action id"),
        (lambda p: p["actions"][0].update(value=["act-1"]), "Expected `str`"),
        (lambda p: p["user"].update(id=None), "Expected `str`"),
    ],
)
def test_malformed_block_actions_get_a_400(
    slack_on, agent, propose, ada, post_slack, change, error
):
    propose(agent)
    payload = _click(slack_on, "approve")
    change(payload)
    response = post_slack(payload)
    assert response.status_code == 400
    assert error in response.json()["error"]
    assert _approvals() == []


@pytest.mark.parametrize(
    ("metadata", "error"),
    [("", "not valid JSON"), ("{}", "action_id"), ('{"action_id": 7}', "Expected `str`")],
)
def test_a_dialog_without_our_metadata_gets_a_400(slack_on, post_slack, metadata, error):
    payload = recorded("view_submission_reject", user=ADA)
    payload["view"]["private_metadata"] = metadata
    response = post_slack(payload)
    assert response.status_code == 400
    assert error in response.json()["error"]


def test_interactions_that_are_not_ours_are_acknowledged(slack_on, post_slack):
    payload = recorded("block_actions_approve", user=ADA)
    payload["actions"][0]["action_id"] = "someone_elses_button"
    assert post_slack(payload).status_code == 200
    assert post_slack({"type": "view_closed", "view": {}}).status_code == 200
    assert slack_on.calls == []


# --- who may decide --------------------------------------------------------------------------


def test_an_unknown_slack_user_is_told_why(slack_on, agent, propose, post_slack, make_person):
    make_person("ada", "approver").__class__.objects.filter(username="ada").update(
        email="ada@example.test"
    )
    propose(agent)
    slack_on.users["U0STRANGE"] = {
        "id": "U0STRANGE",
        "name": "stranger",
        "deleted": False,
        "is_bot": False,
        "profile": {"email": "stranger@elsewhere.test", "real_name": "A Stranger"},
    }
    response = post_slack(_click(slack_on, "approve", user="U0STRANGE"))
    assert response.status_code == 200
    assert slack_on.of("users.info") == [{"user": "U0STRANGE"}]
    assert _ephemerals(slack_on) == [
        ":no_entry: Your Slack account is not linked to an opsdash user, and no opsdash user "
        "has your Slack email stranger@elsewhere.test. Ask an opsdash admin to link it "
        "(Django admin: Slack user links)."
    ]
    [note] = slack_on.of("response_url")
    assert (note["response_type"], note["replace_original"]) == ("ephemeral", False)
    assert Action.objects.get(action_id="act-1").status == "pending_approval"
    assert _approvals() == []
    assert SlackUserLink.objects.count() == 0


def test_a_user_missing_in_slack_is_told_why(slack_on, agent, propose, post_slack):
    propose(agent)
    post_slack(_click(slack_on, "approve", user="U0GHOST"))
    assert _ephemerals(slack_on) == [
        ":no_entry: Your Slack account is not linked to an opsdash user and opsdash could not "
        "look it up (Slack users.info: user_not_found). Ask an opsdash admin to link it "
        "(Django admin: Slack user links)."
    ]
    assert _approvals() == []


def test_the_slack_email_links_the_opsdash_user_once(
    slack_on, agent, propose, post_slack, make_person
):
    ada = make_person("ada", "approver")
    ada.email = "Ada@Example.test"
    ada.save()
    slack_on.users[ADA] = {"id": ADA, "name": "ada", "profile": {"email": "ada@example.test"}}
    propose(agent)
    assert post_slack(_click(slack_on, "approve")).status_code == 200
    link = SlackUserLink.objects.get()
    assert (link.slack_user_id, link.user, link.linked_by) == (ADA, ada, "email")
    assert Action.objects.get(action_id="act-1").decided_by == "ada"
    propose(agent, action_id="act-2")
    post_slack(_click(slack_on, "approve", action_id="act-2", trigger="2.2.second-click"))
    assert len(slack_on.of("users.info")) == 1  # the stored link answers from now on
    assert Action.objects.get(action_id="act-2").status == "approved"


def test_a_viewer_cannot_decide(slack_on, agent, propose, post_slack, make_person):
    vera = make_person("vera", "viewer")
    SlackUserLink.objects.create(slack_user_id=VERA, user=vera)
    propose(agent)
    assert post_slack(_click(slack_on, "approve", user=VERA)).status_code == 200
    assert _ephemerals(slack_on) == [
        ":no_entry: Deciding actions needs the approver role; your opsdash account vera does "
        "not have it."
    ]
    assert Action.objects.get(action_id="act-1").status == "pending_approval"
    # A viewer cannot reject either: no dialog opens.
    post_slack(_click(slack_on, "reject", user=VERA))
    assert slack_on.of("views.open") == []
    assert _approvals() == []


# --- deciding --------------------------------------------------------------------------------


def test_one_approver_approves_a_medium_risk_action(slack_on, agent, propose, ada, post_slack):
    propose(agent)
    response = post_slack(_click(slack_on, "approve"))
    assert (response.status_code, response.content) == (200, b"")
    action = Action.objects.get(action_id="act-1")
    assert (action.status, action.decided_by) == ("approved", "ada")
    [approval] = _approvals()
    assert approval == {
        "decision": "approved",
        "by": "ada",
        "reason": "",
        "comment": "via Slack",
        "proposal_hash": action.proposal_hash,
    }
    [update] = _updates(slack_on)
    message = SlackMessage.objects.get()
    assert (update["channel"], update["ts"]) == (message.channel, message.ts)
    assert _status_line(update) == (
        ":white_check_mark: *Approved* by ada — `k8s.restart_deployment` on "
        "`k8s://prod/payments/api`"
    )
    assert update["text"].startswith("Approved: k8s.restart_deployment")
    assert not _has_buttons(update)
    assert _ephemerals(slack_on) == []
    assert SlackInteraction.objects.get().outcome == "approved"


def test_high_risk_needs_two_distinct_slack_users(slack_on, agent, propose, ada, omar, post_slack):
    propose(agent, risk="high")
    post_slack(_click(slack_on, "approve", trigger="1.1.ada"))
    assert Action.objects.get(action_id="act-1").status == "pending_approval"
    [first] = _updates(slack_on)
    assert _status_line(first) == (
        ":hourglass_flowing_sand: *1 of 2 approvals* (approved by ada) for "
        "`k8s.restart_deployment` on `k8s://prod/payments/api`"
    )
    assert _has_buttons(first)

    post_slack(_click(slack_on, "approve", trigger="1.2.ada-again"))
    assert _ephemerals(slack_on) == [
        ":no_entry: You already approved this; it needs 2 distinct approvers."
    ]

    post_slack(_click(slack_on, "approve", user=OMAR, trigger="1.3.omar"))
    action = Action.objects.get(action_id="act-1")
    assert (action.status, action.decided_by) == ("approved", "omar")
    assert [(a["decision"], a["by"], a["comment"]) for a in _approvals()] == [
        ("approve", "ada", "via Slack"),
        ("approved", "omar", "via Slack"),
    ]
    last = _updates(slack_on)[-1]
    assert _status_line(last).startswith(":white_check_mark: *Approved* by ada, omar — ")
    assert not _has_buttons(last)


def test_separation_of_duties_from_slack_needs_a_non_owner(
    slack_on, agent, propose, ada, omar, post_slack
):
    policy_version_create(
        created_by="test", source="approvers: {medium: 1, separation_of_duties: true}\n"
    )
    agent.owners.add(ada)
    propose(agent)
    [post] = slack_on.of("chat.postMessage")
    assert "*Votes needed*\n1 approver, one not owning the agent" in [
        f["text"] for f in post["blocks"][1]["fields"]
    ]
    post_slack(_click(slack_on, "approve", trigger="3.1.owner"))
    assert Action.objects.get(action_id="act-1").status == "pending_approval"
    assert _status_line(_updates(slack_on)[-1]).startswith(
        ":hourglass_flowing_sand: *1 of 2 approvals* (approved by ada)"
    )
    assert _ephemerals(slack_on) == [
        ":information_source: Your approval counts, but the agent's owners cannot be its only "
        "approvers: one approver who does not own it is still needed."
    ]
    post_slack(_click(slack_on, "approve", user=OMAR, trigger="3.2.outsider"))
    assert Action.objects.get(action_id="act-1").status == "approved"


def test_reject_asks_for_a_reason_in_a_dialog(slack_on, agent, propose, ada, post_slack):
    propose(agent)
    click = _click(slack_on, "reject")
    assert post_slack(click).status_code == 200
    [opened] = slack_on.of("views.open")
    assert opened["trigger_id"] == click["trigger_id"]
    view = opened["view"]
    assert (view["callback_id"], view["title"]["text"], view["submit"]["text"]) == (
        "opsdash_reject_reason",
        "Reject action",
        "Reject",
    )
    assert json.loads(view["private_metadata"]) == {
        "action_id": "act-1",
        "response_url": slack_on.response_url,
        "channel": "C0APPROVALS",
        "message_ts": "1764120000.000100",
    }
    assert Action.objects.get(action_id="act-1").status == "pending_approval"

    submission = recorded("view_submission_reject", user=ADA, reason="   ")
    submission["view"]["private_metadata"] = view["private_metadata"]
    response = post_slack(submission)
    assert response.status_code == 200
    assert response.json() == {
        "response_action": "errors",
        "errors": {"reason": "A rejection needs a reason the agent's owners can act on."},
    }
    assert _approvals() == []

    submission = recorded("view_submission_reject", user=ADA)
    submission["view"]["private_metadata"] = view["private_metadata"]
    response = post_slack(submission)
    assert (response.status_code, response.content) == (200, b"")
    reason = (
        "The payments pods are healthy; the alert is a dashboard bug. Check the exporter first."
    )
    action = Action.objects.get(action_id="act-1")
    assert (action.status, action.decided_by, action.decision_reasons) == (
        "rejected",
        "ada",
        [reason],
    )
    [approval] = _approvals()
    assert (approval["decision"], approval["reason"], approval["comment"]) == (
        "rejected",
        reason,
        "via Slack",
    )
    [update] = _updates(slack_on)
    assert _status_line(update) == (
        f":x: *Rejected* by ada: {reason} — `k8s.restart_deployment` on `k8s://prod/payments/api`"
    )
    assert not _has_buttons(update)
    assert _ephemerals(slack_on) == []


def test_a_reason_over_the_limit_is_refused_in_the_dialog(
    slack_on, agent, propose, ada, post_slack
):
    propose(agent)
    response = post_slack(
        recorded(
            "view_submission_reject",
            user=ADA,
            response_url=slack_on.response_url,
            reason="x" * 2001,
        )
    )
    assert response.json()["errors"] == {"reason": "At most 2000 characters."}
    assert Action.objects.get(action_id="act-1").status == "pending_approval"


def test_an_action_decided_on_the_web_is_already_decided_in_slack(
    slack_on, agent, propose, ada, omar, post_slack
):
    propose(agent)
    action_decide(action_id="act-1", user=omar, approve=True)
    post_slack(_click(slack_on, "approve"))
    assert _ephemerals(slack_on) == [":no_entry: Already decided: approved by omar."]
    # The stale buttons go: the message is brought up to date.
    [update] = _updates(slack_on)
    assert _status_line(update).startswith(":white_check_mark: *Approved* by omar — ")
    assert not _has_buttons(update)
    post_slack(_click(slack_on, "reject", trigger="4.2.reject-late"))
    assert slack_on.of("views.open") == []
    assert _ephemerals(slack_on)[-1] == ":no_entry: Already decided: approved by omar."
    # A dialog opened before the web decision is refused on submission.
    post_slack(recorded("view_submission_reject", user=ADA, response_url=slack_on.response_url))
    assert _ephemerals(slack_on)[-1] == ":no_entry: Already decided: approved by omar."
    assert [a["by"] for a in _approvals()] == ["omar"]


def test_a_slack_retry_does_not_decide_twice(slack_on, agent, propose, ada, omar, post_slack):
    propose(agent, risk="high")
    click = _click(slack_on, "approve")
    assert post_slack(click).status_code == 200
    retried = post_slack(
        click, HTTP_X_SLACK_RETRY_NUM="1", HTTP_X_SLACK_RETRY_REASON="http_timeout"
    )
    assert (retried.status_code, retried.content) == (200, b"")
    assert [a["by"] for a in _approvals()] == ["ada"]
    assert len(_updates(slack_on)) == 1
    assert _ephemerals(slack_on) == []  # not "you already approved this"
    assert SlackInteraction.objects.count() == 1


def test_a_refused_response_url_is_never_called(slack_on, agent, propose, post_slack, caplog):
    propose(agent)
    post_slack(
        recorded(
            "block_actions_approve", user="U0NOBODY", response_url="https://attacker.example/x"
        )
    )
    assert _ephemerals(slack_on) == []
    assert "is not a Slack address" in caplog.text


def test_the_audit_event_is_the_one_the_web_writes(
    slack_on, agent, propose, ada, omar, post_slack, client
):
    propose(agent, action_id="act-web")
    propose(agent, action_id="act-1")
    client.force_login(omar)
    web = client.post("/api/v1/actions/act-web/approve", {}, content_type="application/json")
    assert web.status_code == 200
    post_slack(_click(slack_on, "approve"))
    from_web = Event.objects.get(action_id="act-web", type="approval")
    from_slack = Event.objects.get(action_id="act-1", type="approval")
    assert (from_slack.type, from_slack.source, from_slack.agent_id) == (
        from_web.type,
        from_web.source,
        from_web.agent_id,
    )
    assert from_slack.data.keys() == from_web.data.keys()
    assert (from_web.data["by"], from_web.data["comment"]) == ("omar", "")
    assert (from_slack.data["by"], from_slack.data["comment"]) == ("ada", "via Slack")


@pytest.mark.django_db(transaction=True)
def test_a_retry_arriving_while_the_first_delivery_runs_decides_once(slack_on, agent, make_person):
    import threading
    from urllib.parse import quote

    from django.db import connection
    from django.test import Client

    from apps.actions.propose import ProposalIn, action_propose

    ada = make_person("ada", "approver")
    SlackUserLink.objects.create(slack_user_id=ADA, user=ada)
    action_propose(
        agent=agent,
        proposal=ProposalIn(
            action_id="act-1",
            action_type="k8s.restart_deployment",
            target="k8s://prod/payments/api",
            env="prod",
            risk="high",
            confidence=0.8,
            rollback_plan="redeploy",
        ),
    )
    body = "payload=" + quote(json.dumps(_click(slack_on, "approve")))
    headers = signed_headers(body)
    start, answers = threading.Barrier(2), []

    def deliver(retry: str) -> None:
        try:
            start.wait()
            extra = {"HTTP_X_SLACK_RETRY_NUM": retry} if retry else {}
            response = Client().post(
                INTERACTIONS_URL,
                data=body,
                content_type="application/x-www-form-urlencoded",
                **headers,
                **extra,
            )
            answers.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(r,)) for r in ("", "1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert answers == [200, 200]
    assert [a["by"] for a in _approvals()] == ["ada"]
    assert SlackInteraction.objects.count() == 1
    assert _ephemerals(slack_on) == []


def test_an_admin_links_a_slack_user_in_the_admin(client, make_person, ada):
    admin = make_person("root")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    page = client.get("/admin/chatops/slackuserlink/")
    assert page.status_code == 200
    assert "U0ADA0001" in page.content.decode()
    response = client.post(
        "/admin/chatops/slackuserlink/add/", {"slack_user_id": "U0NEW0001", "user": ada.pk}
    )
    assert response.status_code == 302
    link = SlackUserLink.objects.get(slack_user_id="U0NEW0001")
    assert (link.user, link.linked_by) == (ada, "admin")


def test_when_the_dialog_cannot_open_the_approver_gets_the_web_link(
    slack_on, agent, propose, ada, post_slack
):
    propose(agent)
    slack_on.fail_next["views.open"] = (200, {"ok": False, "error": "expired_trigger_id"})
    assert post_slack(_click(slack_on, "reject")).status_code == 200
    assert _ephemerals(slack_on) == [
        ":no_entry: The reason dialog did not open (Slack views.open: expired_trigger_id). "
        "Reject on the action's page: https://opsdash.example.test/actions/act-1/"
    ]
    assert Action.objects.get(action_id="act-1").status == "pending_approval"


def test_a_decision_made_on_the_web_updates_the_slack_request(
    slack_on, agent, propose, omar, django_capture_on_commit_callbacks
):
    propose(agent)
    with django_capture_on_commit_callbacks(execute=True):
        action_decide(action_id="act-1", user=omar, approve=False, reason="wrong cluster")
    [update] = _updates(slack_on)
    assert _status_line(update).startswith(":x: *Rejected* by omar: wrong cluster — ")
    assert not _has_buttons(update)


def test_old_interactions_are_forgotten(db):
    from datetime import timedelta

    from django.utils import timezone

    from apps.chatops.services import slack_interactions_prune

    now = timezone.now()
    SlackInteraction.objects.create(key="old", received_at=now - timedelta(days=8))
    SlackInteraction.objects.create(key="recent", received_at=now - timedelta(days=6))
    assert slack_interactions_prune() == 1
    assert list(SlackInteraction.objects.values_list("key", flat=True)) == ["recent"]
