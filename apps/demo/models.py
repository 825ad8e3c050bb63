from django.db import models
from django.utils import timezone


class DemoSeed(models.Model):
    """Marks that the demo fleet was loaded, and with which anchor date (so reloads are no-ops)."""

    anchor = models.DateTimeField()
    seed = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    events_accepted = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"demo seed {self.seed} @ {self.anchor:%Y-%m-%d}"
