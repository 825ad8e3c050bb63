import smtplib
from datetime import timedelta

from django.utils import timezone

from apps.core.tasks import TRANSIENT_ERRORS, opsdash_task
from apps.notifications.models import Notification, WebhookPost
from apps.notifications.outbound import SWEEP_GRACE, enqueue, outbound_due_ids
from apps.notifications.services import notification_email_send, webhook_post_attempt

# A mail server that is down or refuses for now; the claim is released before these surface.
EMAIL_TRANSIENT_ERRORS = (*TRANSIENT_ERRORS, smtplib.SMTPException, OSError)
# Emails older than this are not worth sending any more.
EMAIL_MAX_AGE = timedelta(days=1)


@opsdash_task("notifications.email_send", retry_on=EMAIL_TRANSIENT_ERRORS, max_retries=6)
def notification_email_task(notification_id: int) -> bool:
    return notification_email_send(notification_id=notification_id)


@opsdash_task("notifications.webhook_post", acks_late=True, time_limit=60)
def webhook_post_task(post_id: int) -> None:
    delay = webhook_post_attempt(post_id=post_id)
    if delay is not None:
        enqueue(webhook_post_task, post_id, countdown=delay)


@opsdash_task("notifications.outbox_sweep")
def notifications_outbox_sweep_task() -> int:
    """The safety net: emails and webhook posts whose queued task was lost are queued again."""
    now = timezone.now()
    emails = list(
        Notification.objects.filter(
            email_wanted=True,
            emailed_at__isnull=True,
            created_at__lte=now - SWEEP_GRACE,
            created_at__gte=now - EMAIL_MAX_AGE,
        ).values_list("pk", flat=True)[:500]
    )
    for pk in emails:
        enqueue(notification_email_task, pk)
    posts = outbound_due_ids(WebhookPost, now=now)
    for pk in posts:
        enqueue(webhook_post_task, pk)
    return len(emails) + len(posts)
