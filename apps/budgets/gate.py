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
from django.utils import timezone

from apps.budgets.gauges import gauge_state_stored, gauges_write
from apps.budgets.models import Budget, BudgetMeasure, BudgetScope, GateCall
from apps.budgets.periods import local_day, period_key
from apps.costs.models import ModelPrice
from apps.costs.pricing import MTOK, USD_QUANTUM, PriceBook
from apps.fleet.models import Agent

GATED_MEASURES = (BudgetMeasure.LLM_USD, BudgetMeasure.TOKENS)
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
_HOLD_SQL = "UPDATE budgets_budgetgauge SET reserved = reserved + %s WHERE budget_id = %s"
# The agent's halt is read again here, after the gauges were locked: a budget halt commits
# while its ingest holds them, so one committed before this point is seen, and none can land
# between this check and the commit that grants the call.
_CALL_SQL = (
    "INSERT INTO budgets_gatecall (reservation_id, agent_id, kind, model, estimated_usd, holds,"
    " created_at, expires_at)"
    " SELECT %s, id, %s, %s, %s, %s, %s, %s FROM fleet_agent WHERE id = %s AND NOT halted"
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


def _estimate_usd(request: GateRequest, book: PriceBook, now: datetime) -> Decimal | None:
    """The call's highest cost: the agent's own estimate, or its input and max_tokens of
    output at the price in force (None: the model has no price)."""
    if request.estimated_cost_usd is not None:
        return request.estimated_cost_usd.quantize(USD_QUANTUM, rounding=ROUND_CEILING)
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
        return GateAnswer(423, "halt", f"{agent.slug} is halted: {agent.halted_reason}")
    try:
        with transaction.atomic():
            return _check(agent, request, now)
    except _Refused as refused:
        # Rolled back: a refused call holds nothing.
        return refused.answer


def _check(agent: Agent, request: GateRequest, now: datetime) -> GateAnswer:
    postgres = connection.vendor == "postgresql"
    provider = request.provider.lower()
    with connection.cursor() as cursor:
        if postgres:
            # A reservation is soft state that expires by itself: its commit need not wait for
            # the disk (a crash loses only holds, never an event or a counter).
            cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(
            _GAUGES_SQL + (" FOR UPDATE OF g" if postgres else ""),
            {
                "agent": agent.pk,
                "team": agent.team_id,
                "model": request.model,
                "provider": provider,
            },
        )
        rows = cursor.fetchall()
    gauges = [_Gauge(*row[:15]) for row in rows]
    gauges = [
        g
        for g in gauges
        if g.scope != BudgetScope.MODEL or fnmatch.fnmatchcase(request.model, g.model_pattern)
    ]
    gauges = [_current(g, now) for g in gauges]
    estimate_usd: Decimal | None = Decimal(0)
    if request.kind == "llm_call" and any(g.measure == BudgetMeasure.LLM_USD for g in gauges):
        estimate_usd = _estimate_usd(request, _price_book(provider, rows[0][15]), now)
    elif request.kind == "llm_call" and request.estimated_cost_usd is not None:
        estimate_usd = _estimate_usd(request, PriceBook([]), now)
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
    holds = _weigh(agent, request, gauges, estimate_usd, figures, now)
    reservation_id = uuid.uuid4()
    expires = now + timedelta(seconds=settings.GATE_RESERVATION_SECONDS)
    with connection.cursor() as cursor:
        for budget_id, amount in holds:
            cursor.execute(_HOLD_SQL, [amount, budget_id])
        cursor.execute(
            _CALL_SQL,
            [
                reservation_id,
                request.kind,
                request.model[:200],
                estimate_usd if request.kind == "llm_call" else None,
                json.dumps({str(pk): str(amount) for pk, amount in holds}),
                now,
                expires,
                agent.pk,
            ],
        )
        granted = cursor.rowcount == 1
    if not granted:
        halted_reason = (
            Agent.objects.filter(pk=agent.pk).values_list("halted_reason", flat=True).first()
        )
        raise _Refused(GateAnswer(423, "halt", f"{agent.slug} is halted: {halted_reason}"))
    return GateAnswer(
        200,
        "allow",
        "Within every budget that covers this call.",
        reservation_id=str(reservation_id),
        budgets=figures,
    )


def _current(gauge: _Gauge, now: datetime) -> _Gauge:
    """The gauge itself when it is of the current period; else written anew from what is
    stored (the first call of a period, or of a budget's life), under the lock held."""
    today = local_day(now, gauge.time_zone)
    if gauge.period_start == period_key(gauge.period, gauge.rolling_days, today):
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
) -> list[tuple[int, Decimal]]:
    """What the call holds of each budget; raises _Refused with the answer when it may not
    go ahead."""
    estimate_tokens = Decimal(request.input_tokens + request.max_tokens)
    holds: list[tuple[int, Decimal]] = []
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
        else:
            amount = estimate_tokens
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
        if amount:
            holds.append((gauge.pk, amount))
    return holds


def _throttle(agent: Agent, gauge: _Gauge, figures: list[dict[str, Any]], now: datetime) -> None:
    limit = gauge.throttle_per_minute or 0
    recent = list(
        GateCall.objects.filter(agent=agent, created_at__gt=now - timedelta(minutes=1))
        .order_by("created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(recent) >= limit:
        wait = math.ceil((recent[0] + timedelta(minutes=1) - now).total_seconds())
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
    closed = GateCall.objects.filter(
        reservation_id__in=ids, settled_at__isnull=True, released_at__isnull=True
    )
    holds = list(closed.values_list("holds", flat=True))
    closed.update(settled_at=now)
    return _holds_sum(holds)


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
