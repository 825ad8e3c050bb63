"""A pending action is announced in the approvals channel once, as Block Kit with buttons."""

from datetime import timedelta

import pytest

from apps.chatops.models import SlackMessage
from apps.chatops.services import slack_message_post
from apps.chatops.slack import SlackRefused, SlackUnavailable
from apps.chatops.tasks import slack_action_post_task
from apps.policy.services import policy_version_create
from tests.chatops.conftest import CHANNEL, SITE_URL

pytestmark = pytest.mark.django_db


def _texts(blocks):
    """Every piece of text a person sees in the blocks, in order."""
    out = []
    for block in blocks:
        if "text" in block:
            out.append(block["text"]["text"])
        out.extend(f["text"] for f in block.get("fields", []))
        out.extend(e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn")
    return out


def test_a_pending_action_is_posted_with_what_an_approver_needs(slack_on, agent, propose):
    policy_version_create(
        created_by="test", source="deadlines:\n  high: {escalate_after: 10m, expire_after: 1h}\n"
    )
    action = propose(agent, risk="high", rationale="Crash loop. " + "x" * 900)
    [post] = slack_on.of("chat.postMessage")
    assert post["channel"] == CHANNEL
    assert post["text"] == (
        "Approval needed: k8s.restart_deployment on k8s://prod/payments/api "
        "(prod, high risk) proposed by triage-bot"
    )
    texts = _texts(post["blocks"])
    assert texts[0] == (
        ":hourglass_flowing_sand: *Approval needed* for `k8s.restart_deployment` on "
        "`k8s://prod/payments/api`"
    )
    expires = int(action.expires_at.timestamp())
    assert texts[1:9] == [
        "*Agent*\ntriage-bot",
        "*Action*\n`k8s.restart_deployment`",
        "*Target*\n`k8s://prod/payments/api`",
        "*Environment*\nprod",
        "*Effective risk*\nhigh",
        "*Confidence*\n80%",
        "*Votes needed*\n2 distinct approvers",
        f"*Expires*\n<!date^{expires}^{{date_short_pretty}} at {{time}}|"
        f"{action.expires_at:%Y-%m-%d %H:%M} UTC>",
    ]
    assert action.expires_at - action.proposed_at == timedelta(hours=1)
    rationale = texts[9]
    assert rationale.startswith("*Rationale*\nCrash loop. xxx") and rationale.endswith("x…")
    assert len(rationale) == len("*Rationale*\n") + 600
    assert texts[10] == f"<{SITE_URL}/actions/act-1/|Open in opsdash> · action `act-1`"
    buttons = post["blocks"][-1]["elements"]
    assert [(b["action_id"], b["value"], b["text"]["text"]) for b in buttons] == [
        ("opsdash_approve", "act-1", "Approve"),
        ("opsdash_reject", "act-1", "Reject…"),
    ]
    message = SlackMessage.objects.get()
    assert (message.action_id, message.channel, message.ts) == (
        "act-1",
        CHANNEL,
        "1764120000.000001",
    )


def test_a_retried_task_posts_once(slack_on, agent, propose):
    propose(agent)
    slack_action_post_task.apply(args=["act-1"])
    slack_action_post_task.apply(args=["act-1"])
    assert len(slack_on.of("chat.postMessage")) == 1
    assert SlackMessage.objects.count() == 1


def test_a_failed_post_releases_its_claim_for_the_retry(slack_on, agent, propose, settings):
    settings.SLACK_BOT_TOKEN = ""  # off while proposing: nothing is posted
    propose(agent)
    assert slack_on.of("chat.postMessage") == []
    settings.SLACK_BOT_TOKEN = "xoxb-test-0000-opsdash"
    slack_on.fail_next["chat.postMessage"] = (200, {"ok": False, "error": "ratelimited"})
    with pytest.raises(SlackUnavailable, match="ratelimited"):
        slack_message_post(action_id="act-1")
    assert SlackMessage.objects.count() == 0
    slack_on.fail_next["chat.postMessage"] = (200, {"ok": False, "error": "channel_not_found"})
    with pytest.raises(SlackRefused, match="channel_not_found"):
        slack_message_post(action_id="act-1")
    assert SlackMessage.objects.count() == 0
    assert slack_message_post(action_id="act-1").ts == "1764120000.000001"
    assert len(slack_on.of("chat.postMessage")) == 3


def test_agent_text_cannot_ping_the_channel(slack_on, agent, propose):
    propose(agent, rationale="<!channel> click <https://evil.example|here> & approve")
    [post] = slack_on.of("chat.postMessage")
    assert (
        "*Rationale*\n&lt;!channel&gt; click &lt;https://evil.example|here&gt; &amp; approve"
        in _texts(post["blocks"])
    )


def test_actions_that_need_nobody_are_not_posted(slack_on, agent, propose):
    agent.autonomy_mode = "observe"
    agent.save()
    assert propose(agent).status == "recorded"
    assert slack_on.of("chat.postMessage") == []


def test_nothing_is_queued_when_slack_is_not_configured(slack_on, settings, agent, propose):
    settings.SLACK_SIGNING_SECRET = ""
    assert propose(agent).status == "pending_approval"
    assert slack_on.calls == []
    assert SlackMessage.objects.count() == 0
