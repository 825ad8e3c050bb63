"""What other apps call when something happens that approvers in Slack should see."""

from apps.chatops.slack import slack_config
from apps.chatops.tasks import slack_action_post_task, slack_message_refresh_task, task_queue


def action_pending_announce(action_id: str) -> None:
    """Called by action_propose after a proposal that waits for people has committed."""
    if slack_config() is not None:
        task_queue(slack_action_post_task, action_id)


def action_decision_announce(action_id: str) -> None:
    """For decisions made elsewhere (web queue, expiry sweep): brings the Slack request up to
    date. Call it after the commit; it does nothing for actions never posted to Slack."""
    if slack_config() is not None:
        task_queue(slack_message_refresh_task, action_id)
