"""SLOs over the agents' audit trail: definitions, the facts they count, per-minute rollups,
the latest computed status, and alerts.

How the numbers flow (see DESIGN.md "SLOs"):
  events ──(ingest)──▶ Action / Incident read models
         ──(derived consumer "slo", Celery)──▶ SliFact: one row per (SLI kind, subject), the
           subject's current contribution (bucket minute, value, good)
         ──▶ SloRollup: per SLO and minute, good/total, moved by the difference between a
           fact's old and new contribution, so an update costs what the new events touch
         ──(Celery, every minute)──▶ SloStatus (SLI, budget, burn rates) and SloAlert.
A PromQL SLO has no facts: a beat task writes its rollups from Prometheus.
`manage.py rebuild_rollups` recomputes facts and rollups from the read models.
"""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class SliKind(models.TextChoices):
    TIME_TO_PROPOSE = "time_to_propose", "Time to propose"
    ACCEPTANCE = "acceptance", "Acceptance"
    ROLLBACK = "rollback", "Rollback"
    ACCURACY = "accuracy", "Accuracy (precision)"
    RECALL = "recall", "Recall"
    COST_PER_ACTION = "cost_per_action", "Cost per action"
    ENERGY_PER_ACTION = "energy_per_action", "Energy per action"
    PROMQL = "promql", "PromQL ratio"


# SLIs whose "good" compares a measured value with the SLO's threshold.
THRESHOLD_KINDS = frozenset(
    {SliKind.TIME_TO_PROPOSE, SliKind.COST_PER_ACTION, SliKind.ENERGY_PER_ACTION}
)
# Safety SLIs: a page alert on one of them may demote the agent (Slo.auto_demote).
SAFETY_KINDS = frozenset({SliKind.ROLLBACK, SliKind.ACCURACY})


class SloScope(models.TextChoices):
    AGENT = "agent", "One agent"
    TEAM = "team", "One team"
    ALL = "all", "All agents"


class WindowKind(models.TextChoices):
    ROLLING = "rolling", "Rolling"
    CALENDAR_MONTH = "calendar_month", "Calendar month"


ROLLING_DAYS = (7, 28, 30)


class Slo(models.Model):
    """An objective for one SLI over a scope and a window.

    `threshold` means, by SLI: time_to_propose — seconds; cost_per_action — USD;
    energy_per_action — Wh; unused otherwise. `rollback_window`: a succeeded execution rolled
    back within it counts as bad (rollback SLI). `good_query` / `total_query`: PromQL (promql SLI).
    """

    slug = models.SlugField(max_length=63, unique=True)  # OpenSLO metadata.name
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    sli = models.CharField(max_length=24, choices=SliKind.choices)
    scope = models.CharField(max_length=8, choices=SloScope.choices, default=SloScope.ALL)
    team = models.ForeignKey(
        "fleet.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="slos"
    )
    agent = models.ForeignKey(
        "fleet.Agent", null=True, blank=True, on_delete=models.CASCADE, related_name="slos"
    )
    # Narrows the SLO to one agent version: a new agent or prompt version as a canary.
    agent_version = models.CharField(max_length=64, blank=True)
    objective = models.DecimalField(
        max_digits=7,
        decimal_places=5,
        validators=[MinValueValidator(Decimal("0.5")), MaxValueValidator(Decimal("0.99999"))],
    )
    window_kind = models.CharField(
        max_length=16, choices=WindowKind.choices, default=WindowKind.ROLLING
    )
    window_days = models.PositiveSmallIntegerField(default=28)  # rolling windows: 7, 28 or 30
    time_zone = models.CharField(max_length=64, default="UTC")  # calendar months start here
    threshold = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    rollback_window = models.DurationField(default=timedelta(hours=24))
    good_query = models.TextField(blank=True)
    total_query = models.TextField(blank=True)
    alerting = models.BooleanField(default=True)
    notify_in_app = models.BooleanField(default=True)
    notify_email = models.BooleanField(default=False)
    notify_webhook = models.BooleanField(default=False)
    webhook_url = models.URLField(max_length=500, blank=True)  # blank: NOTIFY_WEBHOOK_URL
    auto_demote = models.BooleanField(default=False)
    owners = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="slos")
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Bumped whenever what the SLO counts changes (SLI, scope, threshold…): rollups of an older
    # revision are rebuilt, never mixed with new ones.
    revision = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(scope="agent", agent__isnull=False, team__isnull=True)
                    | models.Q(scope="team", team__isnull=False, agent__isnull=True)
                    | models.Q(scope="all", team__isnull=True, agent__isnull=True)
                ),
                name="slo_scope_target",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class SliFact(models.Model):
    """What one subject (an action, or an incident for recall) contributes to one SLI kind now.

    `counted` false: the subject is not (yet) in the SLI's total (e.g. not decided). `value`:
    the measured figure for threshold SLIs (seconds, USD, Wh). `good`: for the other SLIs.
    """

    kind = models.CharField(max_length=24, choices=SliKind.choices)
    subject = models.CharField(max_length=128)  # action_id, or incident_id for recall
    # No index and no database constraint of their own: facts are read by kind and minute;
    # each index costs every fact write, and each constraint a trigger call per row, which a
    # rebuild pays millions of times. Facts are derived from events, whose agent FK is
    # PROTECT; Django still cascades an agent or team deletion to them.
    agent = models.ForeignKey(
        "fleet.Agent",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    team = models.ForeignKey(
        "fleet.Team",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    agent_version = models.CharField(max_length=64, blank=True)
    minute = models.DateTimeField()  # the bucket: the SLI's bucket time, truncated to the minute
    counted = models.BooleanField(default=True)
    good = models.BooleanField(null=True)
    value = models.DecimalField(max_digits=18, decimal_places=6, null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "subject"], name="slifact_once"),
        ]
        indexes = [models.Index(fields=["kind", "minute"], name="slifact_kind_minute")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.subject}"


class SloRollup(models.Model):
    """Good and total events of one SLO in one minute (UTC)."""

    # slorollup_once (slo, minute) serves every lookup by SLO; a second index would only slow
    # the writes. No database constraint either (a trigger call per row written, millions in a
    # rebuild): rollups are derived, and deleting an SLO deletes them through Django.
    slo = models.ForeignKey(
        Slo,
        on_delete=models.CASCADE,
        related_name="rollups",
        db_index=False,
        db_constraint=False,
    )
    minute = models.DateTimeField()
    good = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["slo", "minute"], name="slorollup_once"),
        ]

    def __str__(self) -> str:
        return f"{self.slo_id}@{self.minute:%Y-%m-%dT%H:%M}: {self.good}/{self.total}"


class SloStatus(models.Model):
    """The latest evaluation of an SLO (written each minute by Celery, read by pages and
    /metrics). Ratios are None when the window holds no events."""

    slo = models.OneToOneField(Slo, on_delete=models.CASCADE, related_name="status")
    evaluated_at = models.DateTimeField()
    window_start = models.DateTimeField()
    good = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    sli = models.DecimalField(max_digits=9, decimal_places=6, null=True)
    budget_remaining = models.DecimalField(max_digits=12, decimal_places=6, null=True)
    # {"5m": 0.0, "30m": …, "1h", "2h", "6h", "1d", "3d"}: error ratio / (1 - objective).
    burn_rates = models.JSONField(default=dict)
    worst_burn_rate = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    # "ok" | "warning" (a ticket alert) | "critical" (a page alert) | "no_data"
    state = models.CharField(max_length=10, default="no_data")
    # Recent SLI points for the tile's sparkline: [[iso minute, ratio or null], …].
    sparkline = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"{self.slo_id}: {self.state}"


class AlertSeverity(models.TextChoices):
    PAGE = "page", "Page"
    TICKET = "ticket", "Ticket"


class SloAlert(models.Model):
    """One firing of a multi-window burn-rate alert; at most one open per SLO and window pair."""

    slo = models.ForeignKey(Slo, on_delete=models.CASCADE, related_name="alerts")
    severity = models.CharField(max_length=8, choices=AlertSeverity.choices)
    long_window = models.CharField(max_length=4)  # "1h", "6h", "1d", "3d"
    short_window = models.CharField(max_length=4)  # "5m", "30m", "2h", "6h"
    factor = models.DecimalField(max_digits=8, decimal_places=4)
    started_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    peak_burn_rate = models.DecimalField(max_digits=12, decimal_places=4)
    last_burn_rate = models.DecimalField(max_digits=12, decimal_places=4)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["slo", "long_window"],
                condition=models.Q(resolved_at__isnull=True),
                name="sloalert_one_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.slo_id} {self.severity} {self.long_window}/{self.short_window}"
