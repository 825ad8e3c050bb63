"""Posting approval requests to Slack, keeping them current, and knowing who clicked."""

import logging
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.roles import APPROVER, has_role
from apps.actions.models import Action, ActionStatus
from apps.chatops.messages import approval_message
from apps.chatops.models import SlackInteraction, SlackMessage, SlackUserLink
from apps.chatops.selectors import approval_progress
from apps.chatops.slack import (
    IN_REQUEST_TIMEOUT,
    SlackConfig,
    SlackRefused,
    SlackUnavailable,
    slack_config,
    slack_errors,
    slack_respond,
    slack_web_client,
)

logger = logging.getLogger(__name__)

LINK_HELP = "Ask an opsdash admin to link it (Django admin: Slack user links)."


class ChatRefused(Exception):
    """The person in Slack may not decide here; the message says why, for them to read."""


def slack_message_post(*, action_id: str) -> SlackMessage | None:
    """Posts the approval request for a pending action once, however often this runs.

    The SlackMessage row is claimed before Slack is called (its action is unique), so a retried
    or duplicated task finds it and stops; when the post fails the claim is released for the
    retry. A crash between Slack's answer and saving the ts leaves a claim without ts: one
    message that cannot be updated, rather than two.
    """
    config = slack_config()
    if config is None:
        return None
    action = Action.objects.select_related("agent").filter(action_id=action_id).first()
    if action is None or action.status != ActionStatus.PENDING_APPROVAL:
        return None
    try:
        message, created = SlackMessage.objects.get_or_create(
            action=action, defaults={"channel": config.channel}
        )
    except IntegrityError:  # a concurrent run claimed it between the look and the insert
        return None
    if not created:
        return message
    body = approval_message(action, approval_progress(action))
    try:
        with slack_errors("chat.postMessage"):
            response = slack_web_client(config).chat_postMessage(channel=config.channel, **body)
    except Exception:
        message.delete()
        raise
    message.channel = str(response.get("channel") or config.channel)
    message.ts = str(response["ts"])
    message.save(update_fields=["channel", "ts"])
    # A decision made while the post was under way found no ts to update: catch up now.
    action.refresh_from_db()
    if approval_message(action, approval_progress(action)) != body:
        slack_message_refresh(action_id=action_id)
    return message


def slack_message_refresh(*, action_id: str) -> bool:
    """Rewrites the posted request to show the action as it is now (votes, outcome, who)."""
    config = slack_config()
    if config is None:
        return False
    with transaction.atomic():
        # The row lock orders concurrent refreshes of one message: each reads the action after
        # the previous one's update went out, so an older state never overwrites a newer one.
        message = (
            SlackMessage.objects.select_for_update()
            .filter(action_id=action_id)
            .exclude(ts="")
            .first()
        )
        if message is None:
            return False
        action = Action.objects.select_related("agent").get(action_id=action_id)
        body = approval_message(action, approval_progress(action))
        with slack_errors("chat.update"):
            slack_web_client(config).chat_update(channel=message.channel, ts=message.ts, **body)
        message.updated_at = timezone.now()
        message.save(update_fields=["updated_at"])
    return True


def slack_ephemeral_send(*, response_url: str, text: str) -> None:
    """A note only the person who clicked sees (why a click was refused)."""
    slack_respond(response_url, text=text, response_type="ephemeral", replace_original=False)


def _slack_profile(config: SlackConfig, slack_user_id: str) -> dict[str, Any]:
    try:
        with slack_errors("users.info"):
            response = slack_web_client(config, timeout=IN_REQUEST_TIMEOUT).users_info(
                user=slack_user_id
            )
    except (SlackUnavailable, SlackRefused) as exc:
        raise ChatRefused(
            f"Your Slack account is not linked to an opsdash user and opsdash could not look "
            f"it up ({exc}). {LINK_HELP}"
        ) from exc
    user = response.get("user") or {}
    return user if isinstance(user, dict) else {}


def slack_person_resolve(*, config: SlackConfig, slack_user_id: str) -> Any:
    """The opsdash approver behind a Slack user: a stored link, else the one active user with
    the email Slack has for them (the link is then stored). Raises ChatRefused saying why not."""
    link = SlackUserLink.objects.select_related("user").filter(slack_user_id=slack_user_id).first()
    if link is None:
        profile = _slack_profile(config, slack_user_id)
        email = str((profile.get("profile") or {}).get("email") or "").strip()
        if profile.get("deleted") or profile.get("is_bot"):
            raise ChatRefused("Only people with an active Slack account can decide actions.")
        if not email:
            raise ChatRefused(
                "Your Slack account is not linked to an opsdash user, and Slack shows no email "
                f"for it to match. {LINK_HELP}"
            )
        users = list(get_user_model().objects.filter(email__iexact=email, is_active=True)[:2])
        if len(users) != 1:
            found = "no opsdash user has" if not users else "several opsdash users have"
            raise ChatRefused(
                f"Your Slack account is not linked to an opsdash user, and {found} your Slack "
                f"email {email}. {LINK_HELP}"
            )
        link, _ = SlackUserLink.objects.get_or_create(
            slack_user_id=slack_user_id, defaults={"user": users[0], "linked_by": "email"}
        )
    user = link.user
    if not user.is_active:
        raise ChatRefused(f"Your opsdash account {user.get_username()} is deactivated.")
    if not has_role(user, APPROVER):
        raise ChatRefused(
            "Deciding actions needs the approver role; your opsdash account "
            f"{user.get_username()} does not have it."
        )
    return user


def slack_interaction_claim(*, key: str, slack_user_id: str) -> SlackInteraction | None:
    """Claims one interaction; None when it was handled already (a retried delivery).

    Inside the caller's transaction, a concurrent retry waits on the unique key until the first
    delivery commits, then finds it.
    """
    try:
        with transaction.atomic():
            return SlackInteraction.objects.create(key=key, slack_user_id=slack_user_id)
    except IntegrityError:
        return None


def slack_interactions_prune(*, older_than: timedelta = timedelta(days=7)) -> int:
    """Forgets handled interactions long past any redelivery (Slack retries within minutes)."""
    deleted, _ = SlackInteraction.objects.filter(
        received_at__lt=timezone.now() - older_than
    ).delete()
    return deleted
