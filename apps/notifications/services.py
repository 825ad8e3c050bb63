"""notify(): one message to the people concerned, on the channels asked for.

The inbox row is written in the caller's transaction (so a notification commits with the
state change it is about, or not at all); email and the chat webhook are sent by Celery tasks
queued after commit. Every channel is keyed by the dedup key, so a retried caller adds nothing.
"""

import json
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.roles import ALL_ROLES
from apps.fleet.models import Agent
from apps.notifications.models import Notification, WebhookPost
from apps.notifications.outbound import PostOutcome, enqueue, outbound_attempt, post_bytes


class Channel(StrEnum):
    INBOX = "inbox"
    EMAIL = "email"
    WEBHOOK = "webhook"


ALL_CHANNELS: frozenset[str] = frozenset(Channel)


@dataclass(frozen=True)
class NotifyResult:
    dedup_key: str
    recipients: int
    webhook: bool


def absolute_url(url: str) -> str:
    """Links in emails and chat must work outside the browser session."""
    if not url or "://" in url:
        return url
    return settings.SITE_URL.rstrip("/") + "/" + url.lstrip("/")


def notify_recipients(
    *, roles: Iterable[str] = (), users: Iterable[Any] = (), agent: Agent | None = None
) -> list[Any]:
    """Active people holding one of the roles now (superusers hold every role), the given
    users, and the agent's and its team's owners when an agent is given."""
    roles = sorted(set(roles))
    unknown = [r for r in roles if r not in ALL_ROLES]
    if unknown:
        raise ValueError(f"Unknown role(s) {', '.join(unknown)}; roles are {', '.join(ALL_ROLES)}.")
    wanted = Q(pk__in=[u.pk for u in users])
    if roles:
        wanted |= Q(groups__name__in=roles) | Q(is_superuser=True)
    if agent is not None:
        wanted |= Q(owned_agents=agent) | Q(owned_teams=agent.team_id)
    user_model = get_user_model()
    ids = user_model.objects.filter(wanted, is_active=True).values("pk").distinct()
    return list(user_model.objects.filter(pk__in=ids).only("pk", "email").order_by("pk"))


def notify(
    *,
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    roles: Iterable[str] = (),
    users: Iterable[Any] = (),
    agent: Agent | None = None,
    dedup_key: str = "",
    channels: Collection[str] = ALL_CHANNELS,
    webhook_url: str | None = None,
) -> NotifyResult:
    """Notifies the people concerned; safe to call twice with the same dedup key.

    `roles` fan out to the people holding them at this moment, `agent` adds its owners.
    `channels` chooses among inbox, email (implies an inbox row: the record of what was sent)
    and webhook (one chat message, to `webhook_url` or NOTIFY_WEBHOOK_URL when set).
    """
    unknown = set(channels) - ALL_CHANNELS
    if unknown:
        raise ValueError(f"Unknown channel(s) {', '.join(sorted(unknown))}.")
    key = dedup_key or f"{kind}:{uuid.uuid4()}"
    title = title[:200]
    recipients = notify_recipients(roles=roles, users=users, agent=agent)
    email = Channel.EMAIL in channels
    hook_url = webhook_url if webhook_url is not None else settings.NOTIFY_WEBHOOK_URL
    hook = Channel.WEBHOOK in channels and bool(hook_url)
    with transaction.atomic():
        if recipients and (email or Channel.INBOX in channels):
            now = timezone.now()
            Notification.objects.bulk_create(
                [
                    Notification(
                        recipient=user,
                        kind=kind,
                        title=title,
                        body=body,
                        url=url,
                        dedup_key=key,
                        created_at=now,
                        email_wanted=email and bool(user.email),
                    )
                    for user in recipients
                ],
                # The unique (recipient, dedup_key) makes a repeated call a no-op per person.
                ignore_conflicts=True,
            )
        if email:
            pending = list(
                Notification.objects.filter(
                    dedup_key=key, email_wanted=True, emailed_at__isnull=True
                ).values_list("pk", flat=True)
            )
            if pending:
                transaction.on_commit(lambda: _queue_emails(pending))
        if hook:
            post, _ = WebhookPost.objects.get_or_create(
                dedup_key=key,
                defaults={"url": hook_url, "payload": webhook_payload(kind, title, body, url)},
            )
            if post.delivered_at is None and post.gave_up_at is None:
                transaction.on_commit(lambda: _queue_webhook(post.pk))
    return NotifyResult(dedup_key=key, recipients=len(recipients), webhook=hook)


def webhook_payload(kind: str, title: str, body: str, url: str) -> dict[str, Any]:
    """Slack-compatible: `text` for notifications and plain receivers, `blocks` for display."""
    link = absolute_url(url)
    heading = f"*<{link}|{_mrkdwn_escape(title)}>*" if link else f"*{_mrkdwn_escape(title)}*"
    text = f"{title}\n{body}".strip() + (f"\n{link}" if link else "")
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{heading}\n{_mrkdwn_escape(body)}".strip()},
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"opsdash · {kind}"}]},
    ]
    return {"text": text, "blocks": blocks}


def _mrkdwn_escape(text: str) -> str:
    # Slack's three control characters; anything else is shown as written.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _queue_emails(ids: list[int]) -> None:
    from apps.notifications.tasks import notification_email_task

    for pk in ids:
        enqueue(notification_email_task, pk)


def _queue_webhook(pk: int) -> None:
    from apps.notifications.tasks import webhook_post_task

    enqueue(webhook_post_task, pk)


def notification_email_send(*, notification_id: int, now: datetime | None = None) -> bool:
    """Sends one notification's email once: claimed before sending, released if it fails."""
    now = now or timezone.now()
    claimed = Notification.objects.filter(
        pk=notification_id, email_wanted=True, emailed_at__isnull=True
    ).update(emailed_at=now)
    if not claimed:
        return False
    notification = Notification.objects.select_related("recipient").get(pk=notification_id)
    link = absolute_url(notification.url)
    try:
        send_mail(
            subject=f"[opsdash] {notification.title}",
            message=f"{notification.body}\n\n{link}".strip() + "\n",
            from_email=None,
            recipient_list=[notification.recipient.email],
        )
    except Exception as exc:
        # Released so the task's retry (or the sweep) can claim it again.
        Notification.objects.filter(pk=notification_id).update(
            emailed_at=None, email_error=f"{type(exc).__name__}: {exc}"[:500]
        )
        raise
    if notification.email_error:
        Notification.objects.filter(pk=notification_id).update(email_error="")
    return True


def _webhook_send(post: WebhookPost, now: datetime) -> PostOutcome:
    body = json.dumps(post.payload, separators=(",", ":"), ensure_ascii=False).encode()
    return post_bytes(post.url, body, {})


def webhook_post_attempt(*, post_id: int, now: datetime | None = None) -> float | None:
    """One attempt at a chat message; the seconds until the next, or None when none is due."""
    return outbound_attempt(
        WebhookPost,
        pk=post_id,
        send=_webhook_send,
        max_attempts=settings.NOTIFY_WEBHOOK_MAX_ATTEMPTS,
        now=now,
    )


def notifications_mark_read(*, user: Any, ids: Iterable[int] | None = None) -> int:
    """Marks the person's notifications read (all unread ones when `ids` is None)."""
    qs = Notification.objects.for_user(user).unread()
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return qs.update(read_at=timezone.now())
