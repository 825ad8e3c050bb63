"""Slack calls that need not hold up a request: posting, updating, answering a click."""

import logging
from typing import Any

from apps.chatops.services import (
    slack_ephemeral_send,
    slack_interactions_prune,
    slack_message_post,
    slack_message_refresh,
)
from apps.chatops.slack import SlackRefused, SlackUnavailable
from apps.core.tasks import TRANSIENT_ERRORS, opsdash_task

logger = logging.getLogger(__name__)

RETRY_ON = (*TRANSIENT_ERRORS, SlackUnavailable)


@opsdash_task("chatops.action_post", retry_on=RETRY_ON, time_limit=60)
def slack_action_post_task(action_id: str) -> None:
    try:
        slack_message_post(action_id=action_id)
    except SlackRefused as exc:  # configuration (channel, scopes): a retry cannot fix it
        logger.error("could not post action %s to Slack: %s", action_id, exc)


@opsdash_task("chatops.message_refresh", retry_on=RETRY_ON, time_limit=60)
def slack_message_refresh_task(action_id: str) -> None:
    try:
        slack_message_refresh(action_id=action_id)
    except SlackRefused as exc:
        logger.error("could not update the Slack message of action %s: %s", action_id, exc)


@opsdash_task("chatops.ephemeral_send", retry_on=RETRY_ON, time_limit=60, max_retries=3)
def slack_ephemeral_send_task(response_url: str, text: str) -> None:
    try:
        slack_ephemeral_send(response_url=response_url, text=text)
    except SlackRefused as exc:  # the response URL expired (30 min) or was used 5 times
        logger.warning("could not answer a Slack interaction: %s", exc)


@opsdash_task("chatops.interactions_prune", time_limit=300)
def slack_interactions_prune_task() -> int:
    return slack_interactions_prune()


def task_queue(task: Any, *args: str) -> None:
    """Queues a Slack call. A broker outage must not fail what was decided: log and go on (the
    web queue stays the source of truth)."""
    try:
        task.apply_async(args=list(args), retry=False)
    except Exception as exc:  # any broker error
        logger.warning("could not queue %s%r: %s", task.name, args, exc)
