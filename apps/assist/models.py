from django.conf import settings
from django.db import models
from django.utils import timezone


class ActionExplanation(models.Model):
    """Claude's summary of one action's provenance for approvers, kept so a second click is free."""

    action = models.ForeignKey(
        "actions.Action", on_delete=models.CASCADE, related_name="explanations"
    )
    # The proposal it explains: an explanation is reused only for the same arguments.
    proposal_hash = models.CharField(max_length=64, blank=True)
    text = models.TextField()
    model = models.CharField(max_length=200)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_creation_input_tokens = models.PositiveIntegerField(default=0)
    cache_read_input_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0)
    # The llm_call event of the built-in opsdash agent that paid for it.
    llm_call_event_id = models.UUIDField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["action", "proposal_hash", "-created_at"], name="explanation_latest"
            )
        ]

    def __str__(self) -> str:
        return f"explanation of {self.action_id} by {self.model}"

    @property
    def tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
        )
