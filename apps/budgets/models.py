"""Budgets: caps on what agents spend, counted as the events and bills they count are stored.

A budget measures one thing over one period for one scope. Its counters are kept per local day
(in the budget's time zone), so a daily, weekly, monthly or rolling period is a sum of at most
a few dozen rows, and a late event lands in the day it happened.
"""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class BudgetScope(models.TextChoices):
    GLOBAL = "global", "Everything"
    TEAM = "team", "A team"
    AGENT = "agent", "An agent"
    MODEL = "model", "A model"


class BudgetMeasure(models.TextChoices):
    LLM_USD = "llm_usd", "LLM spend (USD, priced from events)"
    CLOUD_COST = "cloud_cost", "Cloud spend (from imported bills)"
    ENERGY_WH = "energy_wh", "Energy (Wh)"
    ACTIONS = "actions", "Actions proposed"
    TOKENS = "tokens", "LLM tokens"


class BudgetPeriod(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly (Monday to Sunday)"
    MONTHLY = "monthly", "Calendar month"
    ROLLING = "rolling", "Rolling N days"


class ThresholdAction(models.TextChoices):
    NOTIFY = "notify", "Notify"
    DEMOTE = "demote", "Demote autonomy one step"
    THROTTLE = "throttle", "Throttle"
    HALT = "halt", "Halt"


# What a new budget gets unless its author says otherwise (issue: 50 % and 80 % notify,
# 90 % throttle, 100 % halt).
DEFAULT_THRESHOLDS = (
    (Decimal(50), ThresholdAction.NOTIFY),
    (Decimal(80), ThresholdAction.NOTIFY),
    (Decimal(90), ThresholdAction.THROTTLE),
    (Decimal(100), ThresholdAction.HALT),
)
AMOUNT_DIGITS, AMOUNT_PLACES = 28, 9


class Budget(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    scope = models.CharField(max_length=8, choices=BudgetScope.choices)
    team = models.ForeignKey(
        "fleet.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="budgets"
    )
    agent = models.ForeignKey(
        "fleet.Agent", null=True, blank=True, on_delete=models.PROTECT, related_name="budgets"
    )
    # For a model budget: an exact model name, or a prefix ending in * (claude-opus-4*).
    model_pattern = models.CharField(max_length=200, blank=True)
    measure = models.CharField(max_length=12, choices=BudgetMeasure.choices)
    # The bills' currency for cloud spend; LLM spend is always USD.
    currency = models.CharField(max_length=3, default="USD")
    period = models.CharField(max_length=8, choices=BudgetPeriod.choices)
    rolling_days = models.PositiveSmallIntegerField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    cap = models.DecimalField(max_digits=24, decimal_places=6)
    active = models.BooleanField(default=True)
    # Each resume starts a new epoch: crossing a threshold again after a resume without more
    # room is a new crossing, with a new event.
    epoch = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=Q(cap__gt=0), name="budget_cap_positive"),
            models.CheckConstraint(
                condition=(Q(scope="global") & Q(team__isnull=True) & Q(agent__isnull=True))
                | (Q(scope="team") & Q(team__isnull=False) & Q(agent__isnull=True))
                | (Q(scope="agent") & Q(agent__isnull=False) & Q(team__isnull=True))
                | (Q(scope="model") & ~Q(model_pattern="") & Q(agent__isnull=True)),
                name="budget_scope_fields",
            ),
            models.CheckConstraint(
                condition=(Q(period="rolling") & Q(rolling_days__gte=1) & Q(rolling_days__lte=366))
                | (~Q(period="rolling") & Q(rolling_days__isnull=True)),
                name="budget_rolling_days",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.slug

    def save(self, *args: Any, **kwargs: Any) -> None:
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding:
            # The gate reads every budget through its gauge: none may exist without one.
            BudgetGauge.objects.get_or_create(budget=self)
        else:
            # The gauge holds figures drawn from the budget (its cap, its next threshold): a
            # saved budget's gauge is read afresh before it is trusted again.
            BudgetGauge.objects.filter(budget=self).update(period_start=None)


class BudgetThreshold(models.Model):
    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="thresholds")
    percent = models.DecimalField(max_digits=6, decimal_places=2)
    action = models.CharField(max_length=8, choices=ThresholdAction.choices)
    # For throttle: at most this many LLM calls or actions per minute, per agent.
    per_minute = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["percent", "action"]
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "percent", "action"], name="budget_threshold_once"
            ),
            models.CheckConstraint(
                condition=Q(percent__gt=0) & Q(percent__lte=1000), name="budget_threshold_percent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.percent} % {self.action}"


class BudgetDay(models.Model):
    """What a budget counted on one local day (its time zone)."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="days")
    day = models.DateField()
    amount = models.DecimalField(
        max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, default=Decimal(0)
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["budget", "day"], name="budget_day_once")]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.day}: {self.amount}"


class BudgetCrossing(models.Model):
    """One threshold crossed once in one period (and epoch): the unique key is the promise."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="crossings")
    threshold = models.ForeignKey(
        BudgetThreshold, null=True, on_delete=models.SET_NULL, related_name="crossings"
    )
    percent = models.DecimalField(max_digits=6, decimal_places=2)
    action = models.CharField(max_length=8, choices=ThresholdAction.choices)
    # The first local day of the period crossed (for a rolling budget, the day it crossed).
    period_start = models.DateField()
    epoch = models.PositiveIntegerField(default=0)
    amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    limit = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    event_id = models.UUIDField(null=True, blank=True)
    crossed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-crossed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["budget", "period_start", "epoch", "percent", "action"],
                name="budget_crossing_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.period_start} {self.percent} % {self.action}"


class BudgetAllowance(models.Model):
    """Room added to one period of a budget when a person resumes it."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="allowances")
    period_start = models.DateField()
    amount = models.DecimalField(max_digits=24, decimal_places=6)
    reason = models.TextField()
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="budget_allowance_positive")
        ]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.period_start} +{self.amount}"


class BudgetGauge(models.Model):
    """Where a budget stands in its current period, kept beside it so the gate reads and locks
    one row per budget instead of summing days, allowances and open reservations per call.

    Written from the stored truth (BudgetDay, allowances, crossings) by every writer that
    changes it, after that writer took the budget's lock; `reserved` moves with each
    reservation the gate grants, and each one settled or expired. A gauge whose period_start
    is not the current period's is stale: the gate refreshes it before trusting it."""

    budget = models.OneToOneField(
        Budget, primary_key=True, on_delete=models.CASCADE, related_name="gauge"
    )
    period_start = models.DateField(null=True, blank=True)
    spent = models.DecimalField(
        max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, default=Decimal(0)
    )
    # With the period's allowances.
    cap = models.DecimalField(
        max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, default=Decimal(0)
    )
    # The lowest halt threshold as an amount; none when the budget has no halt threshold.
    halt_at = models.DecimalField(
        max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, null=True, blank=True
    )
    # The lowest threshold not yet acted on in this period (a halt: in this epoch), as an
    # amount: under it none can fire, and a counter moves without weighing them. None when
    # every threshold has acted.
    next_at = models.DecimalField(
        max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, null=True, blank=True
    )
    # Calls per minute per agent while a throttle threshold of this period has fired.
    throttle_per_minute = models.PositiveIntegerField(null=True, blank=True)
    # What open reservations hold: granted, not yet settled by their llm_call, not expired.
    reserved = models.DecimalField(
        max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, default=Decimal(0)
    )

    def __str__(self) -> str:
        return f"{self.budget_id} {self.period_start}: {self.spent} + {self.reserved}"


class GateCall(models.Model):
    """One call /gate allowed: its reservation, until the llm_call carrying its id settles it
    or it expires. `holds` is what it reserved of each budget ({budget id: amount}), given
    back to the budgets' gauges once, when it settles or expires."""

    reservation_id = models.UUIDField(primary_key=True)
    agent = models.ForeignKey("fleet.Agent", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16)
    model = models.CharField(max_length=200, blank=True)
    estimated_usd = models.DecimalField(
        max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, null=True
    )
    holds = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)
    # Expired unsettled: its holds were given back.
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["agent", "created_at"], name="gate_call_agent_time"),
            models.Index(
                fields=["expires_at"],
                condition=Q(settled_at__isnull=True, released_at__isnull=True),
                name="gate_call_open",
            ),
        ]

    def __str__(self) -> str:
        return str(self.reservation_id)
