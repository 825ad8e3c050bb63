"""Reads of budgets: where each stands in its current period."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from apps.budgets.models import Budget, BudgetCrossing, BudgetDay
from apps.budgets.periods import local_day, period_days, period_key
from apps.budgets.services import effective_cap


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
