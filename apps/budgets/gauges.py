"""Budget gauges: each budget's current period in one row, for the gate.

Lock order, kept by every writer so none deadlock: gate calls being closed, then budget rows
(in id order), then gauge rows (in id order). The gate takes gauge rows only; the counting
closes the calls its llm_calls settle, then takes the budget rows and writes the gauges last,
as recounts and resumes do; the expiry sweep closes calls, then takes gauge rows.
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
    next_at: Decimal | None = None


def period_spent(budget_id: int, first: date, last: date) -> Decimal:
    """What a budget counted over the local days first..last (its period, whole or so far)."""
    total = BudgetDay.objects.filter(budget_id=budget_id, day__gte=first, day__lte=last)
    return total.aggregate(s=Sum("amount"))["s"] or Decimal(0)


def effective_cap(budget: Budget, key: date) -> Decimal:
    """The cap plus the one-time allowances granted for the period."""
    extra = BudgetAllowance.objects.filter(budget=budget, period_start=key).aggregate(
        s=Sum("amount")
    )["s"]
    return budget.cap + (extra or Decimal(0))


def thresholds_acted(
    fired: Iterable[tuple[Decimal, str, int]], epoch: int
) -> set[tuple[Decimal, str]]:
    """(percent, action) of the thresholds that have acted in a period, from its crossings
    ((percent, action, epoch) each): a threshold acts once a period, a halt once per epoch (a
    resume that gave no room starts a new one, and the next count halts again)."""
    return {(p, a) for p, a, e in fired if a != ThresholdAction.HALT or e == epoch}


def gauge_state(
    budget: Budget,
    key: date,
    spent: Decimal,
    cap: Decimal,
    fired: Iterable[tuple[Decimal, str, int]],
) -> GaugeState:
    """The gauge of a period from its total, its cap and the thresholds fired in it
    ((percent, action, epoch) each)."""
    thresholds: Sequence[BudgetThreshold] = list(budget.thresholds.all())
    fired = list(fired)
    halts = [t.percent for t in thresholds if t.action == ThresholdAction.HALT]
    throttled = {percent for percent, action, _ in fired if action == ThresholdAction.THROTTLE}
    limits = [
        t.per_minute
        for t in thresholds
        if t.action == ThresholdAction.THROTTLE and t.per_minute and t.percent in throttled
    ]
    acted = thresholds_acted(fired, budget.epoch)
    waiting = [t.percent for t in thresholds if (t.percent, t.action) not in acted]
    return GaugeState(
        budget_id=budget.pk,
        period_start=key,
        spent=spent,
        cap=cap,
        halt_at=cap * min(halts) / 100 if halts else None,
        throttle_per_minute=min(limits) if limits else None,
        next_at=cap * min(waiting) / 100 if waiting else None,
    )


def gauge_state_stored(budget: Budget, now: datetime) -> GaugeState:
    """The gauge of the current period, from what is stored (a few small queries)."""
    today = local_day(now, budget.time_zone)
    first, last = period_days(budget.period, budget.rolling_days, today)
    key = period_key(budget.period, budget.rolling_days, today)
    spent = period_spent(budget.pk, first, last)
    fired = BudgetCrossing.objects.filter(budget=budget, period_start=key).values_list(
        "percent", "action", "epoch"
    )
    return gauge_state(budget, key, spent, effective_cap(budget, key), fired)


_TABLE = BudgetGauge._meta.db_table
# One statement for both kinds of change, so a transaction's gauge writes go out together
# (psycopg pipelines executemany) and in id order (the lock order): a state written whole, or
# only what closed reservations give back.
_WRITE_SQL = (
    f"UPDATE {_TABLE} SET"  # noqa: S608
    " period_start = CASE WHEN %(whole)s THEN %(period_start)s ELSE period_start END,"
    " spent = CASE WHEN %(whole)s THEN %(spent)s ELSE spent END,"
    " cap = CASE WHEN %(whole)s THEN %(cap)s ELSE cap END,"
    " halt_at = CASE WHEN %(whole)s THEN %(halt_at)s ELSE halt_at END,"
    " throttle_per_minute = CASE WHEN %(whole)s THEN %(throttle)s ELSE throttle_per_minute END,"
    " next_at = CASE WHEN %(whole)s THEN %(next_at)s ELSE next_at END,"
    " reserved = CASE WHEN reserved > %(back)s THEN reserved - %(back)s ELSE 0 END"
    " WHERE budget_id = %(budget_id)s"
)


def gauges_write(
    states: Sequence[GaugeState], released: Mapping[int, Decimal] | None = None
) -> None:
    """Writes whole gauges (`states`) and gives back closed reservations (`released`: {budget
    id: amount}), in id order (the lock order). A gauge row missing (a budget made with
    bulk_create) is created."""
    released = released or {}
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
    for budget_id in sorted(set(whole) | set(released)):
        state = whole.get(budget_id)
        rows.append(
            {
                "budget_id": budget_id,
                "whole": state is not None,
                "period_start": state.period_start if state else None,
                "spent": state.spent if state else None,
                "cap": state.cap if state else None,
                "halt_at": state.halt_at if state else None,
                "throttle": state.throttle_per_minute if state else None,
                "next_at": state.next_at if state else None,
                "back": released.get(budget_id, Decimal(0)),
            }
        )
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(_WRITE_SQL, rows)


def gauges_refresh(budgets: Iterable[Budget], now: datetime) -> None:
    """Writes the gauges of these budgets from what is stored (the caller holds their locks)."""
    gauges_write([gauge_state_stored(b, now) for b in sorted(budgets, key=lambda b: b.pk)])
