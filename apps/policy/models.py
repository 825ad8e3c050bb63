from django.db import models
from django.utils import timezone


class PolicyVersion(models.Model):
    """One immutable version of the policy document (YAML as written); at most one is active.

    Policy changes are not agent events, so who created and who last activated a version is
    recorded here (the audit log's event types are all tied to an agent).
    """

    number = models.PositiveIntegerField(unique=True)
    source = models.TextField()
    sha256 = models.CharField(max_length=64)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            # The database guarantees one active version, whatever races the UI and API have.
            models.UniqueConstraint(
                fields=["active"], condition=models.Q(active=True), name="policy_one_active"
            )
        ]

    def __str__(self) -> str:
        return f"policy v{self.number}{' (active)' if self.active else ''}"


class PolicyShadow(models.Model):
    """A saved version evaluated beside the active policy for chosen agents (a canary run)."""

    version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="shadows")
    agents = models.JSONField(default=list, help_text="Slugs of the agents it covers.")
    running = models.BooleanField(default=True)
    started_by = models.CharField(max_length=150, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    stopped_by = models.CharField(max_length=150, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # At most one shadow at a time, even when two people start one at once.
            models.UniqueConstraint(
                fields=["running"], condition=models.Q(running=True), name="policy_one_shadow"
            )
        ]

    def __str__(self) -> str:
        return f"shadow of v{self.version.number}{' (running)' if self.running else ''}"


class ShadowDecision(models.Model):
    """What the shadow version would have decided for one proposal, beside what was decided."""

    shadow = models.ForeignKey(PolicyShadow, on_delete=models.CASCADE, related_name="decisions")
    version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    action_id = models.CharField(max_length=128)
    agent = models.CharField(max_length=64)
    action_type = models.CharField(max_length=128, blank=True)
    target = models.CharField(max_length=1000, blank=True)
    active_version = models.PositiveIntegerField(null=True, blank=True)
    active_status = models.CharField(max_length=20)
    active_reasons = models.JSONField(default=list)
    shadow_status = models.CharField(max_length=20)
    shadow_reasons = models.JSONField(default=list)
    differs = models.BooleanField()
    evaluated_at = models.DateTimeField()

    class Meta:
        ordering = ["-evaluated_at", "-id"]
        constraints = [
            # A retried proposal is evaluated again but recorded once.
            models.UniqueConstraint(fields=["version", "action_id"], name="shadow_once_per_action")
        ]
        indexes = [
            models.Index(fields=["shadow", "differs", "-evaluated_at"], name="shadow_differences")
        ]

    def __str__(self) -> str:
        return f"{self.action_id}: {self.active_status} → {self.shadow_status}"
