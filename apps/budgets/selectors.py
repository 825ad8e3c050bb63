"""Reads of budgets: where each stands in its current period."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Sum
from django.utils import timezone

from apps.budgets.gauges import effective_cap
from apps.budgets.models import Budget, BudgetCrossing, BudgetDay
from apps.budgets.periods import local_day, period_days, period_key


@dataclass(frozen=True)
class BudgetStanding:
    budget: Budget
    first_day: date
    last_day: date
    spent: Decimal
    cap: Decimal  # with the period's allowances

    @property
    def percent(self) -> Decimal:
        return (self.spent / self.cap * 100) if self.cap else Decimal(0)


def budget_standing(budget: Budget, now: datetime | None = None) -> BudgetStanding:
    today = local_day(now or timezone.now(), budget.time_zone)
    first, last = period_days(budget.period, budget.rolling_days, today)
    spent = BudgetDay.objects.filter(budget=budget, day__gte=first, day__lte=last).aggregate(
        s=Sum("amount")
    )["s"] or Decimal(0)
    cap = effective_cap(budget, period_key(budget.period, budget.rolling_days, today))
    return BudgetStanding(budget=budget, first_day=first, last_day=last, spent=spent, cap=cap)


def budget_crossings(budget: Budget, limit: int = 100) -> list[BudgetCrossing]:
    return list(BudgetCrossing.objects.filter(budget=budget).order_by("-crossed_at")[:limit])


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
    """Cumulative count over the period's days, the cap and thresholds, and the forecast."""
    budget = standing.budget
    today = local_day(now or timezone.now(), budget.time_zone)
    days = budget_days(budget, standing.first_day, standing.last_day)
    x: list[str] = []
    y: list[float] = []
    total = Decimal(0)
    day = standing.first_day
    while day <= min(today, standing.last_day):
        total += days.get(day, Decimal(0))
        x.append(day.isoformat())
        y.append(float(total))
        day += timedelta(days=1)
    end = standing.last_day.isoformat()
    start = standing.first_day.isoformat()
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines+markers", "name": "counted", "x": x, "y": y},
        {
            "type": "scatter",
            "mode": "lines",
            "name": "forecast",
            "x": [today.isoformat(), end],
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
            "xaxis": {"type": "date", "range": [start, end]},
            "yaxis": {"rangemode": "tozero"},
            "shapes": shapes,
            "height": 320,
            "legend": {"orientation": "h"},
        },
    }
