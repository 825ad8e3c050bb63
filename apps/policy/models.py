from django.db import models
from django.utils import timezone


class PolicyVersion(models.Model):
    """One immutable version of the policy document (YAML as written); at most one is active."""

    number = models.PositiveIntegerField(unique=True)
    source = models.TextField()
    sha256 = models.CharField(max_length=64)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)

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
