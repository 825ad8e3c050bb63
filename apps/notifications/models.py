"""Outbound messages: to people (inbox, email, chat webhook) and to agents (signed callbacks).

Every outbound row is claimed before its side effect and records its attempts, so a task that
runs twice (a retry, the sweep, a duplicate message) sends once.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class NotificationQuerySet(models.QuerySet):
    def for_user(self, user: object) -> "NotificationQuerySet":
        return self.filter(recipient_id=getattr(user, "pk", None))

    def unread(self) -> "NotificationQuerySet":
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    """One message in one person's inbox (and, when asked, their email)."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    # The same key twice for one person is the same notification: retried tasks add nothing.
    dedup_key = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    email_wanted = models.BooleanField(default=False)
    # Set when the email is claimed for sending; reset if sending fails so a retry can claim it.
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_error = models.CharField(max_length=500, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "dedup_key"], name="notification_once_per_recipient"
            )
        ]
        indexes = [
            # The top bar counts a person's unread notifications on every page.
            models.Index(
                fields=["recipient"],
                condition=models.Q(read_at__isnull=True),
                name="notification_unread",
            ),
            models.Index(fields=["recipient", "-created_at"], name="notification_inbox"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}: {self.title}"


class OutboundPost(models.Model):
    """Common bookkeeping of an HTTP POST that is retried with backoff until it lands."""

    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When the next attempt may start; an attempt in flight pushes it forward (a lease).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    gave_up_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def state(self) -> str:
        if self.delivered_at:
            return "delivered"
        if self.gave_up_at:
            return "failed"
        return "retrying" if self.attempts else "queued"


class WebhookPost(OutboundPost):
    """One chat-webhook message (Slack-compatible JSON), sent once per dedup key."""

    dedup_key = models.CharField(max_length=200, unique=True)
    url = models.CharField(max_length=500)
    payload = models.JSONField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(delivered_at__isnull=True, gave_up_at__isnull=True),
                name="webhook_post_due",
            )
        ]

    def __str__(self) -> str:
        return f"webhook {self.dedup_key} ({self.state})"


class CallbackDelivery(OutboundPost):
    """One signed POST of an action's final decision to its agent's callback URL."""

    agent = models.ForeignKey("fleet.Agent", on_delete=models.CASCADE, related_name="callbacks")
    action = models.ForeignKey("actions.Action", on_delete=models.CASCADE, related_name="callbacks")
    # The agent's idempotency key (X-Opsdash-Delivery): one delivery per decision event.
    decision_event_id = models.UUIDField(unique=True)
    url = models.CharField(max_length=500)
    # The exact bytes sent on every attempt; only the signature's timestamp changes.
    body = models.TextField()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "callback deliveries"
        indexes = [
            models.Index(fields=["agent", "-created_at"], name="callback_agent_recent"),
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(delivered_at__isnull=True, gave_up_at__isnull=True),
                name="callback_due",
            ),
        ]

    def __str__(self) -> str:
        return f"callback {self.decision_event_id} ({self.state})"
