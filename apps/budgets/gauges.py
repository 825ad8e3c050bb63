"""Budget gauges: each budget's current period in one row, for the gate.

Lock order, kept by every writer so none deadlock: budget rows first (in id order), then gauge
rows (in id order). The gate takes gauge rows only; the counting, recounts and resumes take the
budget rows first and write the gauges last; the expiry sweep takes gauge rows only.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Sum

from apps.budgets.models import (
    AMOUNT_PLACES,
    Budget,
    BudgetAllowance,
    BudgetCrossing,
    BudgetDay,
    BudgetGauge,
    BudgetThreshold,
    ThresholdAction,
)
from apps.budgets.periods import local_day, period_days, period_key

AMOUNT_QUANTUM = Decimal(1).scaleb(-AMOUNT_PLACES)


def stored_decimal(value: Any) -> Decimal:
    """A stored amount read without the ORM: SQLite hands back ints and floats, the latter
    rounded here to the counters' precision rather than carried with their binary noise."""
    if isinstance(value, float):
        return Decimal(repr(value)).quantize(AMOUNT_QUANTUM)
    return Decimal(value)


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
# One statement for every kind of change, so a transaction's gauge writes go out together
# (psycopg pipelines executemany) and in id order (the lock order). A state is written whole;
# a period total alone is written only if the gauge is of that period (else the gate reads the
# period afresh); what comes back from closed reservations is given back either way.
_WRITE_SQL = (
    f"UPDATE {_TABLE} SET"  # noqa: S608
    " period_start = CASE WHEN %(whole)s THEN %(period_start)s ELSE period_start END,"
    " spent = CASE WHEN %(whole)s OR period_start = %(period_start)s"
    " THEN COALESCE(%(spent)s, spent) ELSE spent END,"
    " cap = CASE WHEN %(whole)s THEN %(cap)s ELSE cap END,"
    " halt_at = CASE WHEN %(whole)s THEN %(halt_at)s ELSE halt_at END,"
    " throttle_per_minute = CASE WHEN %(whole)s THEN %(throttle)s ELSE throttle_per_minute END,"
    " reserved = CASE WHEN reserved > %(back)s THEN reserved - %(back)s ELSE 0 END"
    " WHERE budget_id = %(budget_id)s"
)


def gauges_write(
    states: Sequence[GaugeState],
    released: Mapping[int, Decimal] | None = None,
    spent: Mapping[int, tuple[date, Decimal]] | None = None,
) -> None:
    """Writes whole gauges (`states`), period totals alone (`spent`: {budget id: (period start,
    total)}) and gives back closed reservations (`released`), in id order (the lock order).
    A gauge row missing (a budget made with bulk_create) is created."""
    released = released or {}
    spent = spent or {}
    whole = {s.budget_id: s for s in states}
    if whole:
        present = BudgetGauge.objects.filter(budget_id__in=list(whole)).values_list(
            "budget_id", flat=True
        )
        if missing := set(whole) - set(present):
            BudgetGauge.objects.bulk_create(
                [BudgetGauge(budget_id=pk) for pk in sorted(missing)], ignore_conflicts=True
            )
    rows = []
    for budget_id in sorted(set(whole) | set(released) | set(spent)):
        state = whole.get(budget_id)
        key, total = (
            (state.period_start, state.spent) if state else spent.get(budget_id, (None, None))
        )
        rows.append(
            {
                "budget_id": budget_id,
                "whole": state is not None,
                "period_start": key,
                "spent": total,
                "cap": state.cap if state else None,
                "halt_at": state.halt_at if state else None,
                "throttle": state.throttle_per_minute if state else None,
                "back": released.get(budget_id, Decimal(0)),
            }
        )
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(_WRITE_SQL, rows)


def gauges_refresh(budgets: Iterable[Budget], now: datetime) -> None:
    """Writes the gauges of these budgets from what is stored (the caller holds their locks)."""
    gauges_write([gauge_state_stored(b, now) for b in sorted(budgets, key=lambda b: b.pk)])
