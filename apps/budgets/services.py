"""Budget counters, moved in the transaction that stores what they count, and what crossing a
threshold does.

Exactly once: the budgets a batch touches are locked (in id order, so writers never deadlock)
before their counters move, so writers of one budget take turns, each sees the total the one
before it committed, and exactly one of them sees a threshold go from under to over. The
unique key of BudgetCrossing backs that up. Budget locks are always taken before the ledger
head (ingest seals last), the order every writer keeps.
"""

import fnmatch
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from apps.budgets.gauges import (
    GaugeState,
    effective_cap,
    gauge_state,
    gauges_refresh,
    gauges_write,
    period_spent,
    stored_decimal,
    thresholds_acted,
)
from apps.budgets.models import (
    DEFAULT_THRESHOLDS,
    Budget,
    BudgetAllowance,
    BudgetCrossing,
    BudgetDay,
    BudgetMeasure,
    BudgetScope,
    BudgetThreshold,
    ThresholdAction,
)
from apps.budgets.periods import local_day, period_bounds, period_days, period_key
from apps.core.db import pg_cursor
from apps.fleet.models import Agent, AutonomyMode

# The measures counted from events (cloud spend is counted from bills).
EVENT_MEASURES = (
    BudgetMeasure.LLM_USD,
    BudgetMeasure.ENERGY_WH,
    BudgetMeasure.TOKENS,
    BudgetMeasure.ACTIONS,
)
DEMOTION = {
    AutonomyMode.AUTO_LOW_RISK: AutonomyMode.SUGGEST,
    AutonomyMode.SUGGEST: AutonomyMode.OBSERVE,
}
DEFAULT_THROTTLE_PER_MINUTE = 10
UNITS: dict[str, str] = {
    BudgetMeasure.LLM_USD: "USD",
    BudgetMeasure.ENERGY_WH: "Wh",
    BudgetMeasure.TOKENS: "tokens",
    BudgetMeasure.ACTIONS: "actions",
}


@dataclass(frozen=True)
class Counted:
    """One thing a budget may count: an llm_call's usage, or a proposal (an action)."""

    agent_id: int
    team_id: int | None
    ts: datetime
    model: str = ""
    usd: Decimal | None = None
    tokens: int = 0
    wh: Decimal = Decimal(0)
    actions: int = 0

    def amount(self, measure: str) -> Decimal:
        if measure == BudgetMeasure.LLM_USD:
            # An unpriced call has no cost to count; the price page lists it.
            return self.usd or Decimal(0)
        if measure == BudgetMeasure.ENERGY_WH:
            return self.wh
        if measure == BudgetMeasure.TOKENS:
            return Decimal(self.tokens)
        if measure == BudgetMeasure.ACTIONS:
            return Decimal(self.actions)
        return Decimal(0)


def budget_covers(
    budget: "Budget | _Coverage", agent_id: int, team_id: int | None, model: str
) -> bool:
    if budget.scope == BudgetScope.GLOBAL:
        return True
    if budget.scope == BudgetScope.TEAM:
        return team_id is not None and budget.team_id == team_id
    if budget.scope == BudgetScope.AGENT:
        return budget.agent_id == agent_id
    if budget.scope == BudgetScope.MODEL:
        if not model:
            return False
        if budget.team_id is not None and budget.team_id != team_id:
            return False
        return fnmatch.fnmatchcase(model, budget.model_pattern)
    return False


@dataclass(frozen=True)
class _Coverage:
    """What decides whether a budget counts an item: read on every ingest, so without the ORM."""

    pk: int
    scope: str
    team_id: int | None
    agent_id: int | None
    model_pattern: str
    measure: str
    time_zone: str
    period: str
    rolling_days: int | None


# The measures are this module's constants, never input.
_COVERAGE_SQL = (
    "SELECT id, scope, team_id, agent_id, model_pattern, measure, time_zone, period,"  # noqa: S608
    " rolling_days FROM budgets_budget WHERE active AND measure IN ("
    + ", ".join(f"'{m.value}'" for m in EVENT_MEASURES)
    + ")"
)
# The gauges of the budgets a batch touches, moved by what it adds to their current period and
# by the reservations it gives back, locked in id order (the lock order); each comes back with
# whether it is of that period, its total and the amount of its next threshold.
_GAUGES_MOVE_SQL = """
WITH delta(budget_id, added, back, period_start) AS (VALUES {values}),
locked AS MATERIALIZED (
    SELECT g.budget_id FROM budgets_budgetgauge g JOIN delta d ON d.budget_id = g.budget_id
    ORDER BY g.budget_id FOR UPDATE OF g
)
UPDATE budgets_budgetgauge g SET
    spent = CASE WHEN g.period_start = d.period_start THEN g.spent + d.added ELSE g.spent END,
    reserved = CASE WHEN g.reserved > d.back THEN g.reserved - d.back ELSE 0 END
FROM delta d, locked l
WHERE g.budget_id = d.budget_id AND l.budget_id = d.budget_id
RETURNING g.budget_id, g.period_start IS NOT DISTINCT FROM d.period_start, g.spent, g.next_at
"""
_GAUGE_MOVE_SQL = (
    "UPDATE budgets_budgetgauge SET"
    " spent = CASE WHEN period_start = %s THEN spent + %s ELSE spent END,"
    " reserved = CASE WHEN reserved > %s THEN reserved - %s ELSE 0 END WHERE budget_id = %s"
)
_DAYS_ADD_SQL = (
    "INSERT INTO budgets_budgetday (budget_id, day, amount) VALUES (%s, %s, %s)"
    " ON CONFLICT (budget_id, day) DO UPDATE SET amount = budgets_budgetday.amount + excluded.amount"
)
_BUDGETS_LOCK_SQL = "SELECT id FROM budgets_budget WHERE id = ANY(%s) ORDER BY id FOR UPDATE"


@dataclass(frozen=True)
class _Move:
    """What a batch does to one budget's current period: adds to it, gives reservations back."""

    budget_id: int
    period_start: date | None  # None: nothing added to the current period
    added: Decimal
    back: Decimal


def _active_event_budgets() -> list[_Coverage]:
    """One small query per stored batch (the ORM with its prefetch cost 5 ms a batch, about
    as much as storing a proposal); full budgets are loaded only for those that count."""
    with connection.cursor() as cursor:
        cursor.execute(_COVERAGE_SQL)
        return [_Coverage(*row) for row in cursor.fetchall()]


def budgets_count(
    items: Sequence[Counted],
    *,
    released: Mapping[int, Decimal] | None = None,
    now: datetime | None = None,
) -> list[BudgetCrossing]:
    """Adds what the items count to every budget that covers them; acts on each threshold
    crossed in a budget's current period; gives back the reservations `released` (settled
    gate calls: {budget id: amount}). Call inside the transaction storing the items."""
    released = released or {}
    if not items and not released:
        return []
    budgets = _active_event_budgets() if items else []
    increments: dict[int, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    pushers: dict[int, int] = {}
    for budget in budgets:
        for item in items:
            amount = item.amount(budget.measure)
            if amount and budget_covers(budget, item.agent_id, item.team_id, item.model):
                increments[budget.pk][local_day(item.ts, budget.time_zone)] += amount
                pushers[budget.pk] = item.agent_id
    if not increments and not released:
        return []
    counting = [b for b in budgets if b.pk in increments]
    return _apply(counting, increments, pushers, released, now or timezone.now())


def _apply(
    budgets: list[_Coverage],
    increments: dict[int, dict[date, Decimal]],
    pushers: dict[int, int],
    released: Mapping[int, Decimal],
    now: datetime,
) -> list[BudgetCrossing]:
    """In the common case one round trip on PostgreSQL: the budgets locked, the days added,
    the gauges moved. A budget whose total reaches its next threshold (or whose gauge is of an
    earlier period) has its period summed and its thresholds weighed, still under its lock.

    The locks last until the ingest commits, and every writer of one budget queues on them:
    the fewer round trips between the first lock and the commit, the more writers a busy
    budget serves."""
    crossings: list[BudgetCrossing] = []
    whole: list[GaugeState] = []
    current: dict[int, tuple[date, date, date]] = {}
    moves: dict[int, _Move] = {}
    for budget in budgets:
        today = local_day(now, budget.time_zone)
        first, last = period_days(budget.period, budget.rolling_days, today)
        added = sum((v for d, v in increments[budget.pk].items() if first <= d <= last), Decimal(0))
        if not added:
            continue  # late events of a past period: counted there, nothing to act on
        current[budget.pk] = (first, last, today)
        key = period_key(budget.period, budget.rolling_days, today)
        moves[budget.pk] = _Move(budget.pk, key, added, released.get(budget.pk, Decimal(0)))
    for budget_id, back in released.items():
        moves.setdefault(budget_id, _Move(budget_id, None, Decimal(0), back))
    days = sorted(
        (budget_id, day, amount)
        for budget_id, by_day in increments.items()
        for day, amount in by_day.items()
        if amount
    )
    # The budgets whose reservations come back are locked too: every gauge this transaction
    # writes is written after all its budget locks (the lock order).
    ids = sorted({b.pk for b in budgets} | set(released))
    with transaction.atomic(savepoint=False):
        moved = _count(ids, days, [moves[pk] for pk in sorted(moves)])
        for budget_id, (first, last, today) in sorted(current.items()):
            of_period, spent, next_at = moved.get(budget_id, (False, Decimal(0), None))
            if of_period and (next_at is None or spent < next_at):
                continue  # no threshold within reach: the common case
            after = period_spent(budget_id, first, last)
            loaded = Budget.objects.prefetch_related("thresholds").get(pk=budget_id)
            crossed, gauge = _cross(loaded, today, after, pushers[budget_id], now)
            crossings += crossed
            whole.append(gauge)
        if whole:
            gauges_write(whole)
    return crossings


def _count(
    ids: Sequence[int], days: Sequence[tuple[int, date, Decimal]], moves: Sequence[_Move]
) -> dict[int, tuple[bool, Decimal, Decimal | None]]:
    """Locks the budgets, adds the days and moves the gauges; returns, per gauge moved, whether
    it is of the period added to, its total and its next threshold's amount."""
    if connection.vendor == "postgresql":
        values = ", ".join(["(%s::bigint, %s::numeric, %s::numeric, %s::date)"] * len(moves))
        params = [v for m in moves for v in (m.budget_id, m.added, m.back, m.period_start)]
        with pg_cursor() as lock, pg_cursor() as add, pg_cursor() as move:
            # One round trip: sent together, run in order, read once.
            with lock.connection.pipeline():
                lock.execute(_BUDGETS_LOCK_SQL, [list(ids)])
                if days:
                    add.executemany(_DAYS_ADD_SQL, days)
                if moves:
                    move.execute(_GAUGES_MOVE_SQL.format(values=values), params)
            rows = move.fetchall() if moves else []
        return {pk: (bool(of_period), spent, next_at) for pk, of_period, spent, next_at in rows}
    moved = {}
    with connection.cursor() as cursor:
        # SQLite: writers take turns on the database (IMMEDIATE transactions), no row locks.
        cursor.executemany(_DAYS_ADD_SQL, days)
        for m in moves:
            cursor.execute(_GAUGE_MOVE_SQL, [m.period_start, m.added, m.back, m.back, m.budget_id])
            cursor.execute(
                "SELECT period_start, spent, next_at FROM budgets_budgetgauge WHERE budget_id = %s",
                [m.budget_id],
            )
            row = cursor.fetchone()
            if row is not None:
                start, spent, next_at = row
                start = date.fromisoformat(start) if isinstance(start, str) else start
                moved[m.budget_id] = (
                    m.period_start is not None and start == m.period_start,
                    stored_decimal(spent),
                    None if next_at is None else stored_decimal(next_at),
                )
    return moved


def _cross(
    budget: Budget, today: date, after: Decimal, pusher_id: int, now: datetime
) -> tuple[list[BudgetCrossing], GaugeState]:
    """Every threshold at or under the new total that has not fired in this period yet.

    At or under, not "between before and after": a threshold an edit brought under the total
    (a lowered cap) acts too. A halt fires again after a resume that gave no more room (a new
    epoch); the other thresholds fire once a period. Returns the crossings and the budget's
    gauge after them."""
    key = period_key(budget.period, budget.rolling_days, today)
    cap = effective_cap(budget, key)
    fired = set(
        BudgetCrossing.objects.filter(budget=budget, period_start=key).values_list(
            "percent", "action", "epoch"
        )
    )
    acted = thresholds_acted(fired, budget.epoch)
    crossed: list[BudgetCrossing] = []
    thresholds: Iterable[BudgetThreshold] = budget.thresholds.all()
    for threshold in sorted(thresholds, key=lambda t: (t.percent, t.action)):
        limit = cap * threshold.percent / 100
        if limit > after or (threshold.percent, threshold.action) in acted:
            continue
        crossing = _crossing_insert(
            BudgetCrossing(
                budget=budget,
                threshold=threshold,
                percent=threshold.percent,
                action=threshold.action,
                period_start=key,
                epoch=budget.epoch,
                amount=after,
                limit=limit,
                crossed_at=now,
            )
        )
        if crossing is not None:
            _act(budget, crossing, pusher_id, now)
            crossed.append(crossing)
    fired_now = fired | {(c.percent, c.action, c.epoch) for c in crossed}
    return crossed, gauge_state(budget, key, after, cap, fired_now)


def _crossing_insert(crossing: BudgetCrossing) -> BudgetCrossing | None:
    """The crossing, or None when it is already recorded (the unique key; the budget lock
    makes that unreachable for writers that count through this module)."""
    try:
        with transaction.atomic():
            crossing.save(force_insert=True)
    except IntegrityError:
        return None
    return crossing


def agents_in_scope(budget: Budget) -> list[Agent]:
    """The agents a halt or demotion of this budget reaches (a model budget reaches none: the
    gate refuses that model's calls instead)."""
    qs = Agent.objects.select_related("team").order_by("pk")
    if budget.scope == BudgetScope.GLOBAL:
        return list(qs)
    if budget.scope == BudgetScope.TEAM and budget.team_id is not None:
        return list(qs.filter(team_id=budget.team_id))
    if budget.scope == BudgetScope.AGENT and budget.agent_id is not None:
        return list(qs.filter(pk=budget.agent_id))
    return []


def _figure(budget: Budget, amount: Decimal) -> str:
    unit = budget.currency if budget.measure == BudgetMeasure.CLOUD_COST else UNITS[budget.measure]
    places = Decimal("0.01") if unit in ("USD", budget.currency) else Decimal(1)
    return f"{amount.quantize(places):,} {unit}"


def _act(budget: Budget, crossing: BudgetCrossing, pusher_id: int, now: datetime) -> None:
    """What the threshold says to do, and the budget_threshold event that records it."""
    from apps.accounts.roles import FINOPS
    from apps.audit.services.opsdash_events import opsdash_event_record
    from apps.notifications.services import notify

    what = (
        f"{budget.name}: {_figure(budget, crossing.amount)} of "
        f"{_figure(budget, crossing.limit * 100 / crossing.percent)} "
        f"({crossing.percent.normalize():f} %) in the period from {crossing.period_start}"
    )
    touched: list[str] = []
    if crossing.action == ThresholdAction.HALT:
        from apps.fleet.services import agent_halted_set

        for agent in agents_in_scope(budget):
            if not agent.halted:
                agent_halted_set(agent=agent, halted=True, reason=f"Budget {what}")
                touched.append(agent.slug)
    elif crossing.action == ThresholdAction.DEMOTE:
        for agent in agents_in_scope(budget):
            lower = DEMOTION.get(AutonomyMode(agent.autonomy_mode))
            if lower is not None:
                Agent.objects.filter(pk=agent.pk).update(autonomy_mode=lower)
                touched.append(f"{agent.slug} {agent.autonomy_mode}→{lower}")
    pusher = Agent.objects.get(pk=pusher_id)
    data: dict[str, Any] = {
        "budget": budget.slug,
        "percent": f"{crossing.percent.normalize():f}",
        "action": crossing.action,
        "amount": f"{crossing.amount.normalize():f}",
        "limit": f"{crossing.limit.normalize():f}",
        "period_start": crossing.period_start.isoformat(),
        "epoch": crossing.epoch,
        "message": what,
    }
    if touched:
        data["agents"] = touched
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"opsdash:budget-crossing:{crossing.pk}")
    opsdash_event_record(
        agent=pusher, event_type="budget_threshold", data=data, ts=now, event_id=event_id
    )
    BudgetCrossing.objects.filter(pk=crossing.pk).update(event_id=event_id)
    crossing.event_id = event_id
    verb = {
        ThresholdAction.HALT: "halted",
        ThresholdAction.DEMOTE: "demoted",
        ThresholdAction.THROTTLE: "throttled",
        ThresholdAction.NOTIFY: "reached",
    }[ThresholdAction(crossing.action)]
    notify(
        kind="budget_threshold",
        title=f"Budget {budget.name} {verb} at {crossing.percent.normalize():f} %",
        body=what + (f". Agents: {', '.join(touched)}." if touched else "."),
        url=reverse("budgets:detail", kwargs={"slug": budget.slug}),
        agent=pusher if budget.scope == BudgetScope.AGENT else None,
        roles=[FINOPS],
        dedup_key=f"budget_threshold:{crossing.pk}",
    )


def default_thresholds() -> list[dict[str, Any]]:
    """50 % and 80 % notify, 90 % throttle, 100 % halt: what a budget gets unless told."""
    return [
        {
            "percent": percent,
            "action": action,
            "per_minute": DEFAULT_THROTTLE_PER_MINUTE
            if action == ThresholdAction.THROTTLE
            else None,
        }
        for percent, action in DEFAULT_THRESHOLDS
    ]


def budget_create(
    *,
    slug: str,
    name: str,
    scope: str,
    measure: str,
    period: str,
    cap: Decimal,
    team: Any = None,
    agent: Any = None,
    model_pattern: str = "",
    currency: str = "USD",
    rolling_days: int | None = None,
    time_zone: str = "UTC",
    thresholds: Iterable[tuple[Decimal, str, int | None]] | None = None,
    by: Any = None,
) -> Budget:
    """A budget and its thresholds ((percent, action, per_minute); the defaults when None)."""
    from apps.budgets.history import budget_change_record

    with transaction.atomic():
        budget = Budget.objects.create(
            slug=slug,
            name=name,
            scope=scope,
            measure=measure,
            period=period,
            cap=cap,
            team=team,
            agent=agent,
            model_pattern=model_pattern,
            currency=currency,
            rolling_days=rolling_days,
            time_zone=time_zone,
            created_by=by if getattr(by, "pk", None) else None,
        )
        chosen = (
            thresholds
            if thresholds is not None
            else [(t["percent"], t["action"], t["per_minute"]) for t in default_thresholds()]
        )
        BudgetThreshold.objects.bulk_create(
            [
                BudgetThreshold(budget=budget, percent=p, action=a, per_minute=n)
                for p, a, n in chosen
            ]
        )
        budget_change_record(budget, None, by)
    budget_recount_and_act(budget)
    return budget


def budget_resume(
    *,
    budget: Budget,
    reason: str,
    by: Any,
    cap: Decimal | None = None,
    allowance: Decimal | None = None,
    now: datetime | None = None,
) -> list[Agent]:
    """A person resumes the agents this budget halted, with a reason, and a raised cap or a
    one-time allowance for the current period, or neither (then the next counted event halts
    them again: a new epoch makes it a new crossing). Audited as a resume event per agent."""
    from apps.audit.services.opsdash_events import opsdash_event_record
    from apps.fleet.services import agent_halted_set

    if not reason.strip():
        raise ValueError("Say why the agents may run again.")
    from apps.budgets.history import budget_before, budget_change_record

    now = now or timezone.now()
    with transaction.atomic():
        before = budget_before(budget)
        locked = Budget.objects.select_for_update().get(pk=budget.pk)
        today = local_day(now, locked.time_zone)
        key = period_key(locked.period, locked.rolling_days, today)
        if cap is not None:
            locked.cap = cap
        if allowance:
            BudgetAllowance.objects.create(
                budget=locked,
                period_start=key,
                amount=allowance,
                reason=reason,
                granted_by=by if getattr(by, "pk", None) else None,
            )
        locked.epoch += 1
        locked.updated_at = now
        locked.save(update_fields=["cap", "epoch", "updated_at"])
        gauges_refresh([locked], now)
        budget_change_record(locked, before, by, at=now)  # a raised cap is a change of the budget
        resumed = [a for a in agents_in_scope(locked) if a.halted]
        who = getattr(by, "username", "") or str(by or "")
        for agent in resumed:
            agent_halted_set(agent=agent, halted=False)
            opsdash_event_record(
                agent=agent,
                event_type="resume",
                data={
                    "budget": locked.slug,
                    "reason": reason,
                    "by": who,
                    "cap": f"{locked.cap.normalize():f}",
                    "allowance": f"{allowance.normalize():f}" if allowance else None,
                },
                ts=now,
            )
    budget.refresh_from_db()
    return resumed


def agents_halt(*, agents: Sequence[Agent], reason: str, by: Any) -> list[Agent]:
    """A person's halt (one agent, a team, or everything): the same teeth as a budget's, and
    a halt event per agent. Agents already halted keep their first reason."""
    from apps.audit.services.opsdash_events import opsdash_event_record
    from apps.fleet.services import agent_halted_set

    if not reason.strip():
        raise ValueError("Say why the agents must stop.")
    who = getattr(by, "username", "") or str(by or "")
    halted = []
    with transaction.atomic():
        for agent in agents:
            if agent.halted:
                continue
            agent_halted_set(agent=agent, halted=True, reason=f"Halted by {who}: {reason}")
            opsdash_event_record(agent=agent, event_type="halt", data={"reason": reason, "by": who})
            halted.append(agent)
    return halted


def agents_resume(*, agents: Sequence[Agent], reason: str, by: Any) -> list[Agent]:
    """A person resumes agents. A budget that halted one of them in its current period starts
    a new epoch, so the next event it counts past the cap halts the agent again; room comes
    from budget_resume (a raised cap or an allowance)."""
    from apps.audit.services.opsdash_events import opsdash_event_record
    from apps.fleet.services import agent_halted_set

    if not reason.strip():
        raise ValueError("Say why the agents may run again.")
    who = getattr(by, "username", "") or str(by or "")
    now = timezone.now()
    resumed = []
    with transaction.atomic():
        budgets = list(Budget.objects.select_for_update().filter(active=True).order_by("pk"))
        for agent in agents:
            if not agent.halted:
                continue
            for budget in budgets:
                if not budget_covers(budget, agent.pk, agent.team_id, ""):
                    continue
                key = period_key(
                    budget.period, budget.rolling_days, local_day(now, budget.time_zone)
                )
                if BudgetCrossing.objects.filter(
                    budget=budget, period_start=key, epoch=budget.epoch, action=ThresholdAction.HALT
                ).exists():
                    budget.epoch += 1
                    Budget.objects.filter(pk=budget.pk).update(epoch=budget.epoch)
                    gauges_refresh([budget], now)  # its halt waits again, in the new epoch
            agent_halted_set(agent=agent, halted=False)
            opsdash_event_record(
                agent=agent, event_type="resume", data={"reason": reason, "by": who}
            )
            resumed.append(agent)
    return resumed


def budgets_forecast_alert(now: datetime | None = None) -> int:
    """Tells FinOps about each budget whose recent burn reaches its cap before its period ends
    (once per budget, period and epoch); returns how many budgets are projected to breach."""
    from apps.accounts.roles import FINOPS
    from apps.budgets.selectors import budget_forecast, budget_standing
    from apps.notifications.services import notify

    now = now or timezone.now()
    projected = 0
    for budget in Budget.objects.filter(active=True).prefetch_related("thresholds"):
        standing = budget_standing(budget, now)
        if standing.spent >= standing.cap:
            continue  # crossed: the thresholds have spoken
        forecast = budget_forecast(standing, now)
        if forecast.breach_on is None or forecast.breach_on > standing.last_day:
            continue
        projected += 1
        key = period_key(budget.period, budget.rolling_days, local_day(now, budget.time_zone))
        notify(
            kind="budget_forecast",
            title=f"Budget {budget.name} is projected to reach its cap on {forecast.breach_on}",
            body=(
                f"{_figure(budget, standing.spent)} counted of {_figure(budget, standing.cap)}; "
                f"at the recent burn of {_figure(budget, forecast.per_day)} a day the period "
                f"ends at {_figure(budget, forecast.projected)}."
            ),
            url=reverse("budgets:detail", kwargs={"slug": budget.slug}),
            roles=[FINOPS],
            dedup_key=f"budget_forecast:{budget.pk}:{key}:{budget.epoch}",
        )
    return projected


def budget_save(budget: Budget | None, data: dict[str, Any], by: Any) -> Budget:
    """Creates or replaces a budget from validated BudgetIn data (the API and the form)."""
    from apps.budgets.history import budget_before, budget_change_record

    thresholds = data.pop("thresholds", None)
    try:
        with transaction.atomic():
            before = budget_before(budget)
            if budget is None:
                budget = Budget(created_by=by if getattr(by, "pk", None) else None)
            for name, value in data.items():
                setattr(budget, name, value)
            budget.team = data.get("team")
            budget.agent = data.get("agent")
            budget.model_pattern = data.get("model_pattern") or ""
            budget.rolling_days = data.get("rolling_days")
            budget.save()
            if thresholds is not None or not budget.thresholds.exists():
                chosen = thresholds if thresholds is not None else default_thresholds()
                budget.thresholds.all().delete()
                BudgetThreshold.objects.bulk_create(
                    [BudgetThreshold(budget=budget, **t) for t in chosen]
                )
            budget_change_record(budget, before, by)
    except IntegrityError as exc:
        raise ValidationError({"slug": ["A budget with this slug exists."]}) from exc
    budget_recount_and_act(budget)
    return budget


def budget_recount(budget: Budget, now: datetime | None = None) -> Decimal:
    """Counts the current period again from what is stored (usage rows, proposals), so a
    budget created or changed mid-period starts from what was already spent; returns the
    period's total. Holds the budget's lock: writers counting meanwhile wait, then add what
    this count did not see."""
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    from apps.actions.models import Action
    from apps.costs.models import LlmUsage

    now = now or timezone.now()
    zone = ZoneInfo(budget.time_zone)
    today = local_day(now, budget.time_zone)
    first, last = period_days(budget.period, budget.rolling_days, today)
    start, end = period_bounds(budget.period, budget.rolling_days, budget.time_zone, today)
    with transaction.atomic():
        if connection.features.has_select_for_update:
            list(Budget.objects.select_for_update().filter(pk=budget.pk).values("pk"))
        per_day: dict[date, Decimal] = {}
        if budget.measure == BudgetMeasure.ACTIONS:
            actions = Action.objects.filter(proposed_at__gte=start, proposed_at__lt=end)
            actions = _scoped(actions, budget, agent="agent_id", team="agent__team_id")
            rows = actions.annotate(day=TruncDate("proposed_at", tzinfo=zone)).values("day")
            per_day = {r["day"]: Decimal(r["n"]) for r in rows.annotate(n=Count("pk")).order_by()}
        elif budget.measure in (
            BudgetMeasure.LLM_USD,
            BudgetMeasure.ENERGY_WH,
            BudgetMeasure.TOKENS,
        ):
            usage = _scoped(
                LlmUsage.objects.filter(ts__gte=start, ts__lt=end),
                budget,
                agent="agent_id",
                team="team_id",
            )
            measure = {
                BudgetMeasure.LLM_USD: Sum("cost_usd"),
                BudgetMeasure.ENERGY_WH: Sum("energy_wh"),
                BudgetMeasure.TOKENS: Sum("input_tokens")
                + Sum("output_tokens")
                + Sum("cache_write_5m_tokens")
                + Sum("cache_write_1h_tokens")
                + Sum("cache_read_tokens"),
            }[BudgetMeasure(budget.measure)]
            rows = usage.annotate(day=TruncDate("ts", tzinfo=zone)).values("day")
            for r in rows.annotate(amount=measure).order_by():
                if budget.scope != BudgetScope.MODEL:
                    per_day[r["day"]] = Decimal(r["amount"] or 0)
            if budget.scope == BudgetScope.MODEL:
                # A glob is matched in Python, as the counting does: per model, then summed.
                for r in rows.annotate(amount=measure).values("day", "model", "amount").order_by():
                    if fnmatch.fnmatchcase(r["model"], budget.model_pattern):
                        per_day[r["day"]] = per_day.get(r["day"], Decimal(0)) + Decimal(
                            r["amount"] or 0
                        )
        elif budget.measure == BudgetMeasure.CLOUD_COST:
            from apps.billing.models import CostAllocation

            shares = _scoped(
                CostAllocation.objects.filter(
                    charge_period_start__gte=start,
                    charge_period_start__lt=end,
                    billing_currency=budget.currency,
                ),
                budget,
                agent="agent_id",
                team="team_id",
            )
            rows = shares.annotate(day=TruncDate("charge_period_start", tzinfo=zone)).values("day")
            per_day = {
                r["day"]: r["amount"]
                for r in rows.annotate(amount=Sum("effective_cost")).order_by()
            }
        BudgetDay.objects.filter(budget=budget, day__gte=first, day__lte=last).delete()
        BudgetDay.objects.bulk_create(
            [BudgetDay(budget=budget, day=d, amount=a) for d, a in per_day.items() if a]
        )
        gauges_refresh([budget], now)
    return sum(per_day.values(), Decimal(0))


def _scoped(qs: Any, budget: Budget, *, agent: str, team: str) -> Any:
    if budget.scope == BudgetScope.AGENT:
        return qs.filter(**{agent: budget.agent_id})
    if budget.scope == BudgetScope.TEAM or (budget.scope == BudgetScope.MODEL and budget.team_id):
        return qs.filter(**{team: budget.team_id})
    return qs


def budgets_cloud_recount(now: datetime | None = None) -> list[BudgetCrossing]:
    """Counts every cloud-spend budget's current period again from the allocations (a bill
    imported, restated or allocated anew can move it either way) and acts on the thresholds
    it now reaches. Called in the transaction that changed the allocations."""
    now = now or timezone.now()
    crossings: list[BudgetCrossing] = []
    budgets = (
        Budget.objects.filter(active=True, measure=BudgetMeasure.CLOUD_COST)
        .prefetch_related("thresholds")
        .order_by("pk")
    )
    for budget in budgets:
        crossings += budget_recount_and_act(budget, now)
    return crossings


def budget_recount_and_act(budget: Budget, now: datetime | None = None) -> list[BudgetCrossing]:
    """Counts the budget's current period again and acts on every threshold its total now
    reaches (a budget made or changed past a threshold acts at once, not at the next event).
    The budget_threshold events are written as its first governed agent's; a model budget
    governs no agent, so its thresholds act at its next counted event."""
    now = now or timezone.now()
    with transaction.atomic():
        after = budget_recount(budget, now)
        governed = agents_in_scope(budget)
        if not governed or not budget.active:
            return []
        locked = Budget.objects.prefetch_related("thresholds").get(pk=budget.pk)
        crossed, gauge = _cross(
            locked, local_day(now, locked.time_zone), after, governed[0].pk, now
        )
        gauges_write([gauge])
    return crossed
