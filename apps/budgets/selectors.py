"""Reads of budgets: where each stands in its current period, and the throttle on proposals."""

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from django.utils import timezone

from apps.budgets.gate import HELD_MEASURES
from apps.budgets.gauges import effective_cap, period_spent, thresholds_acted
from apps.budgets.models import (
    Budget,
    BudgetCrossing,
    BudgetDay,
    BudgetGauge,
    BudgetMeasure,
    ThresholdAction,
)
from apps.budgets.periods import local_day, period_days, period_key
from apps.core.db import rows_fetch
from apps.fleet.models import Agent


@dataclass(frozen=True)
class BudgetStanding:
    budget: Budget
    first_day: date
    last_day: date
    spent: Decimal
    cap: Decimal  # with the period's allowances
    # The strongest threshold acted on this period: halt (in this epoch), throttle, demote,
    # notify; "" when none.
    state: str = ""

    @property
    def percent(self) -> Decimal:
        return (self.spent / self.cap * 100) if self.cap else Decimal(0)


def budget_standing(budget: Budget, now: datetime | None = None) -> BudgetStanding:
    today = local_day(now or timezone.now(), budget.time_zone)
    first, last = period_days(budget.period, budget.rolling_days, today)
    spent = period_spent(budget.pk, first, last)
    key = period_key(budget.period, budget.rolling_days, today)
    cap = effective_cap(budget, key)
    crossings = BudgetCrossing.objects.filter(budget=budget, period_start=key)
    acted = thresholds_acted(crossings.values_list("percent", "action", "epoch"), budget.epoch)
    fired = {action for _, action in acted}
    state = next((a for a in _SEVERITY if a in fired), "")
    return BudgetStanding(
        budget=budget, first_day=first, last_day=last, spent=spent, cap=cap, state=state
    )


_SEVERITY = (
    ThresholdAction.HALT,
    ThresholdAction.THROTTLE,
    ThresholdAction.DEMOTE,
    ThresholdAction.NOTIFY,
)


def budget_reserved(budget: Budget) -> Decimal | None:
    """What gate calls in flight hold of the budget (None: the gate does not hold for its
    measure)."""
    if budget.measure not in HELD_MEASURES:
        return None
    held = BudgetGauge.objects.filter(budget=budget).values_list("reserved", flat=True).first()
    return held or Decimal(0)


def budget_crossings(budget: Budget, limit: int = 100) -> list[BudgetCrossing]:
    return list(BudgetCrossing.objects.filter(budget=budget).order_by("-crossed_at")[:limit])


@dataclass(frozen=True)
class BudgetChange:
    at: datetime
    by: str  # username, blank for opsdash itself (a seed)
    op: str  # created | changed | deactivated | reactivated
    lines: list[str]  # one per field: "cap 10 → 20"


def budget_changes(budget: Budget, limit: int = 100) -> list[BudgetChange]:
    """Who changed the budget's definition, when and how, newest first."""
    from apps.audit.models import ChangeRecord
    from apps.budgets.history import SUBJECT, change_lines

    records = ChangeRecord.objects.filter(subject_type=SUBJECT, subject_id=budget.pk).order_by(
        "-at", "-id"
    )[:limit]
    return [BudgetChange(at=r.at, by=r.by, op=r.op, lines=change_lines(r)) for r in records]


# The burn a forecast extrapolates: the last week of the period, or all of it if shorter.
FORECAST_LOOKBACK_DAYS = 7


@dataclass(frozen=True)
class Forecast:
    per_day: Decimal  # recent burn
    projected: Decimal  # at the period's end
    breach_on: date | None  # the local day the halt (or the cap) would be reached


def budget_days(budget: Budget, first: date, last: date) -> dict[date, Decimal]:
    return dict(
        BudgetDay.objects.filter(budget=budget, day__gte=first, day__lte=last).values_list(
            "day", "amount"
        )
    )


def budget_forecast(standing: BudgetStanding, now: datetime | None = None) -> Forecast:
    """Projected total at the period's end, from the burn of the last days (today counted
    as the part of it that has passed), and the day the cap would be reached at that burn."""
    budget = standing.budget
    now = now or timezone.now()
    zone = ZoneInfo(budget.time_zone)
    local_now = now.astimezone(zone)
    today = local_now.date()
    day_fraction = Decimal(
        (local_now - local_now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()
    ) / Decimal(86400)
    lookback_start = max(standing.first_day, today - timedelta(days=FORECAST_LOOKBACK_DAYS - 1))
    elapsed_days = Decimal((today - lookback_start).days) + day_fraction
    recent = sum(budget_days(budget, lookback_start, today).values(), Decimal(0))
    per_day = recent / elapsed_days if elapsed_days > 0 else Decimal(0)
    remaining_days = Decimal((standing.last_day - today).days) + (1 - day_fraction)
    projected = standing.spent + per_day * remaining_days
    breach_on = None
    if standing.spent >= standing.cap:
        breach_on = today
    elif per_day > 0 and projected >= standing.cap:
        days_to_cap = (standing.cap - standing.spent) / per_day
        breach_on = (local_now + timedelta(days=float(days_to_cap))).date()
    return Forecast(per_day=per_day, projected=projected, breach_on=breach_on)


def budget_chart(
    standing: BudgetStanding, forecast: Forecast, now: datetime | None = None
) -> dict[str, Any]:
    """Cumulative count over the period (in the budget's local time: each past day's total at
    its end, today's at this moment), the thresholds, and the forecast to the period's end."""
    budget = standing.budget
    local_now = (now or timezone.now()).astimezone(ZoneInfo(budget.time_zone))
    today = local_now.date()
    days = budget_days(budget, standing.first_day, standing.last_day)

    def midnight(day: date) -> str:
        return f"{day.isoformat()} 00:00"

    moment = local_now.strftime("%Y-%m-%d %H:%M:%S")
    x: list[str] = [midnight(standing.first_day)]
    y: list[float] = [0.0]
    total = Decimal(0)
    day = standing.first_day
    while day < min(today, standing.last_day + timedelta(days=1)):
        total += days.get(day, Decimal(0))
        x.append(midnight(day + timedelta(days=1)))
        y.append(float(total))
        day += timedelta(days=1)
    if today <= standing.last_day:
        x.append(moment)
        y.append(float(standing.spent))
    end = midnight(standing.last_day + timedelta(days=1))
    start = midnight(standing.first_day)
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines+markers", "name": "counted", "x": x, "y": y},
        {
            "type": "scatter",
            "mode": "lines",
            "name": "forecast",
            "x": [moment, end],
            "y": [float(standing.spent), float(forecast.projected)],
            "line": {"dash": "dot"},
        },
    ]
    shapes: list[dict[str, Any]] = []
    for t in budget.thresholds.all():
        level = float(standing.cap * t.percent / 100)
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "x0": start,
                "x1": end,
                "y0": level,
                "y1": level,
                "line": {"dash": "dash" if t.action != "halt" else "solid", "width": 1},
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "text",
                "x": [start],
                "y": [level],
                "text": [f"{t.percent.normalize():f} % {t.action}"],
                "textposition": "top right",
                "showlegend": False,
                "hoverinfo": "skip",
            }
        )
    return {
        "data": data,
        "layout": {
            "title": "Counted this period, with the thresholds and the forecast",
            "xaxis": {"type": "date", "range": [start, end], "title": budget.time_zone},
            "yaxis": {"rangemode": "tozero"},
            "shapes": shapes,
            "height": 320,
            "legend": {"orientation": "h"},
        },
    }


# The measures proposals drive (the gate throttles LLM spend, tokens and energy).
PROPOSAL_MEASURES = (BudgetMeasure.ACTIONS, BudgetMeasure.CLOUD_COST)
THROTTLE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class Throttle:
    """A fired throttle that an agent's next proposal would exceed."""

    budget: str  # slug
    budget_name: str
    per_minute: int
    retry_after: int  # whole seconds until a proposal fits in the window again

    def message(self, agent: Agent) -> str:
        return (
            f"Budget {self.budget_name} ({self.budget}) is throttled: at most {self.per_minute} "
            f"action{'s' if self.per_minute != 1 else ''} a minute per agent, and {agent.slug} "
            f"proposed {self.per_minute} in the last 60 s. Retry in {self.retry_after} s."
        )


# Fired throttles of the active budgets covering one agent, with their rates. A model budget
# never covers a proposal (it has no model). Crossings are read per budget through the unique
# key's (budget, period_start) prefix, bounded to the days that can still name a current
# period (a local day is the UTC day or one either side): the exact test is in Python.
_FIRED_THROTTLES_SQL = (
    "SELECT b.slug, b.name, b.period, b.rolling_days, b.time_zone, c.period_start, t.per_minute"
    " FROM budgets_budget b"
    " JOIN budgets_budgetcrossing c ON c.budget_id = b.id AND c.action = %(throttle)s"
    " AND c.period_start >= %(month)s AND c.period_start <= %(last)s"
    " AND c.period_start >= CASE b.period WHEN 'monthly' THEN %(month)s"
    " WHEN 'weekly' THEN %(week)s ELSE %(day)s END"
    " JOIN budgets_budgetthreshold t ON t.budget_id = b.id AND t.action = %(throttle)s"
    " AND t.percent = c.percent AND t.per_minute > 0"
    " WHERE b.active AND b.measure IN (%(actions)s, %(cloud)s)"
    " AND (b.scope = 'global' OR (b.scope = 'team' AND b.team_id = %(team)s)"
    " OR (b.scope = 'agent' AND b.agent_id = %(agent)s))"
)


def proposal_throttle(agent: Agent, now: datetime) -> Throttle | None:
    """The throttle that refuses the agent's next proposal, or None.

    A throttle threshold of an active actions or cloud-spend budget covering the agent that
    has fired in the budget's current period allows `per_minute` proposals per agent in any
    60 s. One query when nothing is throttled (the usual case); two when something is."""
    utc_day = now.astimezone(UTC).date()
    fired = rows_fetch(
        _FIRED_THROTTLES_SQL,
        {
            "throttle": ThresholdAction.THROTTLE.value,
            "month": utc_day - timedelta(days=31),
            "week": utc_day - timedelta(days=7),
            "day": utc_day - timedelta(days=1),
            "last": utc_day + timedelta(days=1),
            "actions": PROPOSAL_MEASURES[0].value,
            "cloud": PROPOSAL_MEASURES[1].value,
            "team": agent.team_id,
            "agent": agent.pk,
        },
    )
    limits: dict[str, tuple[int, str]] = {}
    for slug, name, period, rolling_days, zone, period_start, per_minute in fired:
        if period_start != period_key(period, rolling_days, local_day(now, zone)):
            continue  # fired in an earlier period
        if slug not in limits or per_minute < limits[slug][0]:
            limits[slug] = (per_minute, name)
    if not limits:
        return None
    # The lowest rate refuses first and longest: the window must drop below it.
    slug, (per_minute, name) = min(limits.items(), key=lambda item: (item[1][0], item[0]))
    from apps.actions.models import Action

    # The agent's newest proposals in the window (index action_agent: agent, -proposed_at).
    recent = list(
        Action.objects.filter(agent=agent, proposed_at__gt=now - THROTTLE_WINDOW)
        .order_by("-proposed_at")
        .values_list("proposed_at", flat=True)[:per_minute]
    )
    if len(recent) < per_minute:
        return None
    # One more fits once the oldest of the newest `per_minute` leaves the window.
    oldest = cast(datetime, recent[-1])  # proposed_at > since: never null here
    wait = (oldest + THROTTLE_WINDOW - now).total_seconds()
    return Throttle(
        budget=slug, budget_name=name, per_minute=per_minute, retry_after=max(math.ceil(wait), 1)
    )
