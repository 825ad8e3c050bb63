from django.conf import settings
from django.db import models
from django.utils import timezone


class SlackUserLink(models.Model):
    """Which opsdash user a Slack user is, so a click in Slack is that person's decision."""

    slack_user_id = models.CharField(max_length=32, unique=True, help_text="e.g. U024BE7LH")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="slack_links"
    )
    # "admin" when set in the admin, "email" when matched from Slack's users.info.
    linked_by = models.CharField(max_length=16, default="admin")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slack_user_id"]

    def __str__(self) -> str:
        return f"{self.slack_user_id} → {self.user}"


class SlackMessage(models.Model):
    """The one approval request posted to Slack for a pending action (channel + ts to update)."""

    action = models.OneToOneField(
        "actions.Action",
        to_field="action_id",
        on_delete=models.CASCADE,
        related_name="slack_message",
    )
    channel = models.CharField(max_length=32)
    # Empty while the post is under way: the row is claimed before Slack is called.
    ts = models.CharField(max_length=32, blank=True)
    posted_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.action_id} in {self.channel} at {self.ts or '(posting)'}"


class SlackInteraction(models.Model):
    """One Slack interaction handled once: a retried delivery finds its row and does nothing."""

    key = models.CharField(max_length=255, unique=True)
    received_at = models.DateTimeField(default=timezone.now)
    slack_user_id = models.CharField(max_length=32, blank=True)
    # What opsdash answered: "approved", "approve", "rejected", "modal", or the refusal.
    outcome = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["received_at"], name="slack_interaction_received")]

    def __str__(self) -> str:
        return self.key
