"""What other apps call when something happens that approvers in Slack should see."""

from apps.chatops.slack import slack_config
from apps.chatops.tasks import slack_action_post_task, task_queue


def action_pending_announce(action_id: str) -> None:
    """Called by action_propose after a proposal that waits for people has committed."""
    if slack_config() is not None:
        task_queue(slack_action_post_task, action_id)
