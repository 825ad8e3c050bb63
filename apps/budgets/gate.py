"""The gate an agent asks before each LLM or tool call: allow (with a reservation), throttle
(429), or refuse (423: halted, or the call would cross a halting cap).

A call's estimated maximum cost is held against every LLM-spend (and token) budget covering it
until the llm_call carrying its reservation_id is stored (ingest settles it) or the hold
expires, so concurrent calls cannot together spend past a cap they each fit under alone.

Each budget's gauge (apps.budgets.gauges) is locked while a call is weighed, in id order:
callers of one budget take turns for the length of one short transaction, and each sees what
the one before it reserved and what every committed ingest counted. The common case is four
statements on PostgreSQL (lock and read the gauges, add the holds, record the call, commit),
written in SQL because the gate's latency target leaves no room for the ORM's per-query cost.
"""

import fnmatch
import json
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.budgets.gauges import gauge_state_stored, gauges_write, stored_decimal
from apps.budgets.models import Budget, BudgetGauge, BudgetMeasure, BudgetScope, GateCall
from apps.budgets.periods import local_day, period_key
from apps.core.db import pg_cursor, rows_fetch
from apps.costs.models import ModelPrice
from apps.costs.pricing import MTOK, USD_QUANTUM, PriceBook
from apps.fleet.models import Agent

# The measures an LLM call moves. Spend and tokens hold the call's maximum; energy has no
# estimate before the call, so an energy budget is weighed (its throttle, its halting cap
# already passed) but holds nothing.
GATED_MEASURES = (BudgetMeasure.LLM_USD, BudgetMeasure.TOKENS, BudgetMeasure.ENERGY_WH)
HELD_MEASURES = (BudgetMeasure.LLM_USD, BudgetMeasure.TOKENS)
# How long a closed call is kept after its reservation would have expired: long past any
# throttle window, long enough to read what happened to a call.
GATE_CALLS_KEPT = timedelta(hours=1)


@dataclass(frozen=True)
class GateRequest:
    kind: str  # llm_call | tool_call
    model: str = ""
    provider: str = "anthropic"
    max_tokens: int = 0
    input_tokens: int = 0
    estimated_cost_usd: Decimal | None = None


@dataclass
class GateAnswer:
    status: int  # 200, 423, 429, 503
    decision: str  # allow | halt | throttle | unavailable
    reason: str = ""
    reservation_id: str | None = None
    retry_after: int | None = None
    budget: str | None = None
    budgets: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"decision": self.decision, "reason": self.reason}
        if self.reservation_id:
            body["reservation_id"] = self.reservation_id
        if self.budget:
            body["budget"] = self.budget
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        body["budgets"] = self.budgets
        return body


_GAUGES_SQL = (
    "SELECT b.id, b.slug, b.name, b.measure, b.period, b.rolling_days, b.time_zone, b.scope,"  # noqa: S608
    " b.model_pattern, g.period_start, g.spent, g.cap, g.halt_at, g.throttle_per_minute,"
    " g.reserved,"
    " (SELECT max(p.id) FROM costs_modelprice p WHERE p.provider = %(provider)s)"
    " FROM budgets_budget b JOIN budgets_budgetgauge g ON g.budget_id = b.id"
    " WHERE b.active AND b.measure IN ("
    + ", ".join(f"'{m.value}'" for m in GATED_MEASURES)
    + ") AND (b.scope = 'global' OR (b.scope = 'agent' AND b.agent_id = %(agent)s)"
    " OR (b.scope = 'team' AND b.team_id = %(team)s)"
    " OR (b.scope = 'model' AND %(model)s <> '' AND (b.team_id IS NULL OR b.team_id = %(team)s)))"
    " ORDER BY b.id"
)
# The agent's halt is read again here, after the gauges were locked: a budget halt commits
# while its ingest holds them, so one committed before this point is seen, and none can land
# between this check and the commit that grants the call.
_CALL_SQL = (
    "INSERT INTO budgets_gatecall (reservation_id, agent_id, kind, model, estimated_usd, holds,"
    " created_at, expires_at)"
    " SELECT %s, %s, %s, %s, %s, %s, %s, %s FROM fleet_agent WHERE id = %s AND NOT halted"
)


@dataclass(frozen=True)
class _Gauge:
    pk: int
    slug: str
    name: str
    measure: str
    period: str
    rolling_days: int | None
    time_zone: str
    scope: str
    model_pattern: str
    period_start: date | None
    spent: Decimal
    cap: Decimal
    halt_at: Decimal | None
    throttle_per_minute: int | None
    reserved: Decimal


def _gauge(row: Sequence[Any]) -> _Gauge:
    if connection.vendor == "postgresql":
        return _Gauge(*row)
    # SQLite hands back dates as text and amounts as numbers.
    (pk, slug, name, measure, period, rolling, zone, scope, pattern) = row[:9]
    start, spent, cap, halt_at, throttle, reserved = row[9:15]
    return _Gauge(
        pk,
        slug,
        name,
        measure,
        period,
        rolling,
        zone,
        scope,
        pattern,
        date.fromisoformat(start) if isinstance(start, str) else start,
        stored_decimal(spent),
        stored_decimal(cap),
        None if halt_at is None else stored_decimal(halt_at),
        throttle,
        stored_decimal(reserved),
    )


class _Refused(Exception):
    def __init__(self, answer: GateAnswer) -> None:
        self.answer = answer


_price_books: dict[str, tuple[int | None, PriceBook]] = {}


def _price_book(provider: str, version: int | None) -> PriceBook:
    """The provider's prices, kept per process until a price row is added (rows are only
    ever added: a correction is a new row), which `version` (the highest id) shows."""
    cached = _price_books.get(provider)
    if cached is not None and cached[0] == version:
        return cached[1]
    book = PriceBook(ModelPrice.objects.filter(provider=provider))
    _price_books[provider] = (version, book)
    return book


def _estimate_usd(
    request: GateRequest, gauges: Sequence[_Gauge], price_version: Any, now: datetime
) -> Decimal | None:
    """The call's highest cost: 0 for a tool call; the agent's own estimate; or, under an
    LLM-spend budget, its input and max_tokens of output at the price in force (None: the
    model has no price)."""
    if request.kind != "llm_call":
        return Decimal(0)
    if request.estimated_cost_usd is not None:
        return request.estimated_cost_usd.quantize(USD_QUANTUM, rounding=ROUND_CEILING)
    if not any(g.measure == BudgetMeasure.LLM_USD for g in gauges):
        return Decimal(0)  # nothing to weigh it against: no need for a price
    book = _price_book(request.provider.lower(), price_version)
    price = book.price_for(request.provider.lower(), request.model, now)
    if price is None:
        return None
    highest = (
        request.input_tokens * price.input_usd_per_mtok
        + request.max_tokens * price.output_usd_per_mtok
    ) / MTOK
    # Rounded up to the counters' precision, so what is held is exactly what is given back.
    return highest.quantize(USD_QUANTUM, rounding=ROUND_CEILING)


def gate_check(*, agent: Agent, request: GateRequest, now: datetime | None = None) -> GateAnswer:
    """`agent` as loaded for this request: a halt seen then answers at once; one committed
    since is caught when the call is recorded."""
    now = now or timezone.now()
    if agent.halted:
        return _halted(agent, agent.halted_reason)
    try:
        if connection.vendor == "postgresql":
            answer = _check_in_one_statement(agent, request, now)
            if answer is not None:
                return answer
        with transaction.atomic():
            return _check_locked(agent, request, now)
    except _Refused as refused:
        # Nothing was held: a refusal rolls back, or never wrote.
        return refused.answer


@dataclass
class _Weighed:
    estimate_usd: Decimal | None
    figures: list[dict[str, Any]]
    # Every gauge weighed and what the call holds of it (0: checked against, holds nothing).
    weights: list[tuple[_Gauge, Decimal]]

    @property
    def holds(self) -> dict[int, Decimal]:
        return {gauge.pk: amount for gauge, amount in self.weights if amount}


def _gauges_read(agent: Agent, request: GateRequest, *, lock: bool) -> tuple[list[_Gauge], Any]:
    """The gauges of the budgets covering the call, and the price table's version."""
    sql = _GAUGES_SQL + (" FOR UPDATE OF g" if lock else "")
    params: dict[str, Any] = {
        "agent": agent.pk,
        "team": agent.team_id,
        "model": request.model,
        "provider": request.provider.lower(),
    }
    rows = rows_fetch(sql, params)
    gauges = [
        g
        for g in (_gauge(row[:15]) for row in rows)
        if g.scope != BudgetScope.MODEL or fnmatch.fnmatchcase(request.model, g.model_pattern)
    ]
    return gauges, rows[0][15] if rows else None


def _weigh_all(
    agent: Agent, request: GateRequest, gauges: list[_Gauge], price_version: Any, now: datetime
) -> _Weighed:
    estimate_usd = _estimate_usd(request, gauges, price_version, now)
    figures = [
        {
            "budget": g.slug,
            "measure": g.measure,
            "spent": f"{g.spent.normalize():f}",
            "reserved": f"{g.reserved.normalize():f}",
            "cap": f"{g.cap.normalize():f}",
        }
        for g in gauges
    ]
    weights = _weigh(agent, request, gauges, estimate_usd, figures, now)
    return _Weighed(estimate_usd, figures, weights)


def _check_locked(agent: Agent, request: GateRequest, now: datetime) -> GateAnswer:
    """Every database: the gauges locked for the transaction, stale ones written anew."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # A reservation is soft state that expires by itself: its commit need not wait for
            # the disk (a crash loses only holds, never an event or a counter).
            cursor.execute("SET LOCAL synchronous_commit = off")
    locked = connection.features.has_select_for_update
    gauges, price_version = _gauges_read(agent, request, lock=locked)
    gauges = [_current(g, now) for g in gauges]
    weighed = _weigh_all(agent, request, gauges, price_version, now)
    # Read after the gauges were locked (see _CALL_SQL).
    halted, reason = Agent.objects.values_list("halted", "halted_reason").get(pk=agent.pk)
    if halted:
        raise _Refused(_halted(agent, reason))
    for budget_id, amount in weighed.holds.items():
        BudgetGauge.objects.filter(pk=budget_id).update(reserved=F("reserved") + amount)
    call = GateCall.objects.create(
        reservation_id=uuid.uuid4(),
        agent=agent,
        kind=request.kind,
        model=request.model[:200],
        estimated_usd=weighed.estimate_usd if request.kind == "llm_call" else None,
        holds={str(pk): str(amount) for pk, amount in weighed.holds.items()},
        created_at=now,
        expires_at=now + timedelta(seconds=settings.GATE_RESERVATION_SECONDS),
    )
    return _allowed(call.reservation_id, weighed.figures)


def _check_in_one_statement(agent: Agent, request: GateRequest, now: datetime) -> GateAnswer | None:
    """PostgreSQL, the common case: the gauges are read without a lock and the call weighed;
    then one statement locks them, weighs the call again on what they hold now, adds its holds
    and records it, or does nothing. Run outside a transaction, its locks last only while the
    server runs it: callers of a busy budget never wait on another request's Python. None
    when a gauge is of a past period (the locked path writes it anew)."""
    gauges, price_version = _gauges_read(agent, request, lock=False)
    if any(not _is_current(g, now) for g in gauges):
        return None
    weighed = _weigh_all(agent, request, gauges, price_version, now)
    reservation_id = uuid.uuid4()
    call = _call_columns(reservation_id, agent, request, weighed, now)
    # Outside a transaction the statement is its own, and its commit need not wait for the
    # disk (see _check_locked); inside a caller's transaction that is the caller's to say.
    quick_commit = not connection.in_atomic_block
    # Prepared: planned once per connection (the statement's plan costs more than its run).
    with pg_cursor() as pg:
        if not weighed.weights:
            pg.execute(_reserve_sql(0, quick_commit), [*call, agent.pk], prepare=True)
            if pg.rowcount != 1:
                raise _Refused(_halted_now(agent))
            return _allowed(reservation_id, weighed.figures)
        want = [
            value
            for gauge, amount in weighed.weights
            for value in (gauge.pk, amount, gauge.period_start)
        ]
        pg.execute(
            _reserve_sql(len(weighed.weights), quick_commit),
            [*want, agent.pk, *call],
            prepare=True,
        )
        rows = pg.fetchall()
    granted = bool(rows) and rows[0][-1] == 1
    if granted:
        return _allowed(reservation_id, weighed.figures)
    fresh = {row[0]: row[1:7] for row in rows}
    now_held = [
        replace(
            g,
            period_start=fresh[g.pk][0],
            spent=fresh[g.pk][1],
            cap=fresh[g.pk][2],
            halt_at=fresh[g.pk][3],
            throttle_per_minute=fresh[g.pk][4],
            reserved=fresh[g.pk][5],
        )
        for g in gauges
        if g.pk in fresh
    ]
    if len(now_held) != len(gauges) or any(not _is_current(g, now) for g in now_held):
        return None  # a budget changed period or went away meanwhile: weigh it locked
    # Weighed again on what the gauges held when locked: the refusal says why, in figures.
    _weigh_all(agent, request, now_held, price_version, now)
    raise _Refused(_halted_now(agent))


def _reserve_sql(budgets: int, quick_commit: bool) -> str:
    """The statement that weighs and holds against `budgets` locked gauges and records the
    call (parameters: budget id, amount, period start per gauge; the agent id twice; the
    call's columns), returning each gauge as it was when locked, whether the call fitted,
    and whether it was recorded."""
    quick = ", set_config('synchronous_commit', 'off', true)" if quick_commit else ""
    if not budgets:
        return (
            f"WITH quick AS MATERIALIZED (SELECT 1{quick}) "  # noqa: S608
            + _CALL_SQL.replace(" FROM fleet_agent WHERE", " FROM fleet_agent, quick WHERE")
        )
    values = ", ".join(["(%s::bigint, %s::numeric, %s::date)"] * budgets)
    return f"""
WITH want(budget_id, amount, period_start) AS (VALUES {values}),
locked AS MATERIALIZED (
    SELECT g.budget_id, g.period_start, g.spent, g.cap, g.halt_at, g.throttle_per_minute,
           g.reserved
    FROM budgets_budgetgauge g JOIN want w ON w.budget_id = g.budget_id
    ORDER BY g.budget_id FOR UPDATE OF g
),
verdict AS MATERIALIZED (
    SELECT (SELECT count(*) FROM locked) = {budgets}
       AND NOT EXISTS (
           SELECT 1 FROM locked l JOIN want w ON w.budget_id = l.budget_id
           WHERE l.period_start IS DISTINCT FROM w.period_start
              OR (l.halt_at IS NOT NULL AND l.spent + l.reserved + w.amount > l.halt_at))
       AND NOT EXISTS (SELECT 1 FROM fleet_agent WHERE id = %s AND halted) AS fits{quick}
),
held AS (
    UPDATE budgets_budgetgauge g SET reserved = g.reserved + w.amount
    FROM want w, verdict v
    WHERE v.fits AND g.budget_id = w.budget_id AND w.amount <> 0
    RETURNING g.budget_id
),
granted AS (
    INSERT INTO budgets_gatecall (reservation_id, agent_id, kind, model, estimated_usd, holds,
                                  created_at, expires_at)
    SELECT %s, %s, %s, %s, %s, %s, %s, %s FROM verdict v WHERE v.fits
    RETURNING 1
)
SELECT l.budget_id, l.period_start, l.spent, l.cap, l.halt_at, l.throttle_per_minute,
       l.reserved, (SELECT count(*) FROM granted)
FROM locked l ORDER BY l.budget_id"""  # noqa: S608


def _call_columns(
    reservation_id: uuid.UUID,
    agent: Agent,
    request: GateRequest,
    weighed: _Weighed,
    now: datetime,
) -> list[Any]:
    """The recorded call's columns, in _CALL_SQL's order."""
    return [
        reservation_id,
        agent.pk,
        request.kind,
        request.model[:200],
        weighed.estimate_usd if request.kind == "llm_call" else None,
        json.dumps({str(pk): str(amount) for pk, amount in weighed.holds.items()}),
        now,
        now + timedelta(seconds=settings.GATE_RESERVATION_SECONDS),
    ]


def _allowed(reservation_id: uuid.UUID, figures: list[dict[str, Any]]) -> GateAnswer:
    return GateAnswer(
        200,
        "allow",
        "Within every budget that covers this call.",
        reservation_id=str(reservation_id),
        budgets=figures,
    )


def _halted(agent: Agent, reason: str | None) -> GateAnswer:
    return GateAnswer(423, "halt", f"{agent.slug} is halted: {reason}")


def _halted_now(agent: Agent) -> GateAnswer:
    """The refusal of a call the statement did not record: the agent was halted meanwhile."""
    reason = Agent.objects.filter(pk=agent.pk).values_list("halted_reason", flat=True).first()
    return _halted(agent, reason)


def _is_current(gauge: _Gauge, now: datetime) -> bool:
    today = local_day(now, gauge.time_zone)
    return gauge.period_start == period_key(gauge.period, gauge.rolling_days, today)


def _current(gauge: _Gauge, now: datetime) -> _Gauge:
    """The gauge itself when it is of the current period; else written anew from what is
    stored (the first call of a period, or of a budget's life), under the lock held."""
    if _is_current(gauge, now):
        return gauge
    budget = Budget.objects.prefetch_related("thresholds").get(pk=gauge.pk)
    state = gauge_state_stored(budget, now)
    gauges_write([state])
    return replace(
        gauge,
        period_start=state.period_start,
        spent=state.spent,
        cap=state.cap,
        halt_at=state.halt_at,
        throttle_per_minute=state.throttle_per_minute,
    )


def _weigh(
    agent: Agent,
    request: GateRequest,
    gauges: Sequence[_Gauge],
    estimate_usd: Decimal | None,
    figures: list[dict[str, Any]],
    now: datetime,
) -> list[tuple[_Gauge, Decimal]]:
    """Each budget the call is weighed against and what it holds of it; raises _Refused with
    the answer when the call may not go ahead."""
    estimate_tokens = Decimal(request.input_tokens + request.max_tokens)
    weights: list[tuple[_Gauge, Decimal]] = []
    for gauge in gauges:
        if gauge.throttle_per_minute:
            _throttle(agent, gauge, figures, now)
        if gauge.measure == BudgetMeasure.LLM_USD:
            if request.kind != "llm_call":
                continue
            if estimate_usd is None:
                raise _Refused(
                    GateAnswer(
                        503,
                        "unavailable",
                        f"No price for {request.provider}/{request.model}: the call's cost "
                        f"cannot be weighed against budget {gauge.name}. Send "
                        "estimated_cost_usd, or add the model's price.",
                        budget=gauge.slug,
                        budgets=figures,
                    )
                )
            amount = estimate_usd
        elif gauge.measure == BudgetMeasure.TOKENS:
            amount = estimate_tokens
        else:
            amount = Decimal(0)
        if gauge.halt_at is not None and gauge.spent + gauge.reserved + amount > gauge.halt_at:
            raise _Refused(
                GateAnswer(
                    423,
                    "halt",
                    f"This call would cross budget {gauge.name}: "
                    f"{gauge.spent.normalize():f} counted + {gauge.reserved.normalize():f} "
                    f"reserved + {amount.normalize():f} for this call > "
                    f"{gauge.halt_at.normalize():f}.",
                    budget=gauge.slug,
                    budgets=figures,
                )
            )
        weights.append((gauge, amount))
    return weights


def _throttle(agent: Agent, gauge: _Gauge, figures: list[dict[str, Any]], now: datetime) -> None:
    limit = gauge.throttle_per_minute or 0
    newest = list(
        GateCall.objects.filter(agent=agent, created_at__gt=now - timedelta(minutes=1))
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(newest) >= limit:
        # One more fits once the limit-th newest call leaves the minute.
        wait = math.ceil((newest[-1] + timedelta(minutes=1) - now).total_seconds())
        raise _Refused(
            GateAnswer(
                429,
                "throttle",
                f"Budget {gauge.name} is throttled to {limit} calls a minute per agent.",
                retry_after=max(wait, 1),
                budget=gauge.slug,
                budgets=figures,
            )
        )


def gate_calls_close(reservation_ids: Sequence[str], now: datetime) -> dict[int, Decimal]:
    """Marks the open calls with these reservation ids settled (their llm_calls are being
    stored) and returns what they held of each budget, for the counting to give back. Calls
    already settled or expired give nothing back (a retried batch, a late llm_call)."""
    ids = []
    for value in reservation_ids:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    if not ids:
        return {}
    open_calls = GateCall.objects.filter(
        reservation_id__in=ids, settled_at__isnull=True, released_at__isnull=True
    ).order_by("reservation_id")
    if connection.features.has_select_for_update:
        # Locked before their holds are read: a batch settling the same call, or the expiry
        # sweep, waits here and then finds it closed, so its holds come back once.
        open_calls = open_calls.select_for_update()
    closing = list(open_calls.values_list("reservation_id", "holds"))
    GateCall.objects.filter(reservation_id__in=[pk for pk, _ in closing]).update(settled_at=now)
    return _holds_sum(holds for _, holds in closing)


def _holds_sum(holds: Iterable[dict[str, str]]) -> dict[int, Decimal]:
    total: dict[int, Decimal] = defaultdict(Decimal)
    for held in holds:
        for budget_id, amount in held.items():
            total[int(budget_id)] += Decimal(amount)
    return dict(total)


def gate_reservations_expire(now: datetime | None = None) -> int:
    """Gives back what expired reservations held (their llm_call never came), and forgets
    calls closed long enough ago that no throttle window or late llm_call needs them."""
    now = now or timezone.now()
    with transaction.atomic():
        expired = GateCall.objects.filter(
            settled_at__isnull=True, released_at__isnull=True, expires_at__lte=now
        )
        if connection.features.has_select_for_update:
            expired = expired.select_for_update(skip_locked=True)
        rows = list(expired.values_list("reservation_id", "holds"))
        GateCall.objects.filter(reservation_id__in=[r for r, _ in rows]).update(released_at=now)
        gauges_write([], _holds_sum(h for _, h in rows))
    forget = now - timedelta(seconds=settings.GATE_RESERVATION_SECONDS) - GATE_CALLS_KEPT
    GateCall.objects.filter(expires_at__lt=forget).exclude(
        settled_at__isnull=True, released_at__isnull=True
    ).delete()
    return len(rows)
