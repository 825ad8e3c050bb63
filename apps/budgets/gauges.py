"""Budget gauges: each budget's current period in one row, for the gate.

Lock order, kept by every writer so none deadlock: budget rows first (in id order), then gauge
rows (in id order). The gate takes gauge rows only; the counting, recounts and resumes take the
budget rows first and write the gauges last; the expiry sweep takes gauge rows only.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Sum

from apps.budgets.models import (
    Budget,
    BudgetAllowance,
    BudgetCrossing,
    BudgetDay,
    BudgetGauge,
    BudgetThreshold,
    ThresholdAction,
)
from apps.budgets.periods import local_day, period_days, period_key


@dataclass(frozen=True)
class GaugeState:
    budget_id: int
    period_start: date
    spent: Decimal
    cap: Decimal
    halt_at: Decimal | None
    throttle_per_minute: int | None


def effective_cap(budget: Budget, key: date) -> Decimal:
    """The cap plus the one-time allowances granted for the period."""
    extra = BudgetAllowance.objects.filter(budget=budget, period_start=key).aggregate(
        s=Sum("amount")
    )["s"]
    return budget.cap + (extra or Decimal(0))


def gauge_state(
    budget: Budget,
    key: date,
    spent: Decimal,
    cap: Decimal,
    fired: Iterable[tuple[Decimal, str]],
) -> GaugeState:
    """The gauge of a period from its total, its cap and the thresholds fired in it."""
    thresholds: Sequence[BudgetThreshold] = list(budget.thresholds.all())
    halts = [t.percent for t in thresholds if t.action == ThresholdAction.HALT]
    throttled = {percent for percent, action in fired if action == ThresholdAction.THROTTLE}
    limits = [
        t.per_minute
        for t in thresholds
        if t.action == ThresholdAction.THROTTLE and t.per_minute and t.percent in throttled
    ]
    return GaugeState(
        budget_id=budget.pk,
        period_start=key,
        spent=spent,
        cap=cap,
        halt_at=cap * min(halts) / 100 if halts else None,
        throttle_per_minute=min(limits) if limits else None,
    )


def gauge_state_stored(budget: Budget, now: datetime) -> GaugeState:
    """The gauge of the current period, from what is stored (a few small queries)."""
    today = local_day(now, budget.time_zone)
    first, last = period_days(budget.period, budget.rolling_days, today)
    key = period_key(budget.period, budget.rolling_days, today)
    spent = BudgetDay.objects.filter(budget=budget, day__gte=first, day__lte=last).aggregate(
        s=Sum("amount")
    )["s"] or Decimal(0)
    fired = BudgetCrossing.objects.filter(budget=budget, period_start=key).values_list(
        "percent", "action"
    )
    return gauge_state(budget, key, spent, effective_cap(budget, key), fired)


_TABLE = BudgetGauge._meta.db_table
_WRITE_SQL = (
    f"UPDATE {_TABLE} SET period_start = %s, spent = %s, cap = %s, halt_at = %s,"  # noqa: S608
    " throttle_per_minute = %s,"
    " reserved = CASE WHEN reserved > %s THEN reserved - %s ELSE 0 END WHERE budget_id = %s"
)
_RELEASE_SQL = (
    f"UPDATE {_TABLE} SET reserved = CASE WHEN reserved > %s THEN reserved - %s ELSE 0 END"  # noqa: S608
    " WHERE budget_id = %s"
)


def gauges_write(
    states: Sequence[GaugeState], released: Mapping[int, Decimal] | None = None
) -> None:
    """Writes gauges and gives back released reservations, one row at a time in id order
    (the lock order). A gauge row missing (a budget made with bulk_create) is created."""
    released = released or {}
    by_id = {s.budget_id: s for s in states}
    missing = set(by_id) - set(
        BudgetGauge.objects.filter(budget_id__in=list(by_id)).values_list("budget_id", flat=True)
    )
    if missing:
        BudgetGauge.objects.bulk_create(
            [BudgetGauge(budget_id=pk) for pk in sorted(missing)], ignore_conflicts=True
        )
    with connection.cursor() as cursor:
        for budget_id in sorted(set(by_id) | set(released)):
            back = released.get(budget_id, Decimal(0))
            state = by_id.get(budget_id)
            if state is None:
                cursor.execute(_RELEASE_SQL, [back, back, budget_id])
                continue
            cursor.execute(
                _WRITE_SQL,
                [
                    state.period_start,
                    state.spent,
                    state.cap,
                    state.halt_at,
                    state.throttle_per_minute,
                    back,
                    back,
                    budget_id,
                ],
            )


def gauges_refresh(budgets: Iterable[Budget], now: datetime) -> None:
    """Writes the gauges of these budgets from what is stored (the caller holds their locks)."""
    gauges_write([gauge_state_stored(b, now) for b in sorted(budgets, key=lambda b: b.pk)])
