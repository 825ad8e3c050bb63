"""The gate an agent asks before each LLM or tool call: allow (with a reservation), throttle
(429), or refuse (423: halted, or the call would cross a halting cap).

A call's estimated maximum cost is held against every LLM-spend budget covering it until the
llm_call carrying its reservation_id is stored (ingest settles it) or the hold expires, so
concurrent calls cannot together spend past a cap they each fit under alone. The budgets are
locked while a call is weighed, in id order, as the ingest locks them: callers of one budget
take turns, and each sees what the one before it reserved or spent.
"""

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from apps.budgets.models import (
    Budget,
    BudgetCrossing,
    BudgetMeasure,
    GateCall,
    GateHold,
    ThresholdAction,
)
from apps.budgets.periods import local_day, period_key
from apps.budgets.selectors import budget_standing
from apps.budgets.services import budget_covers
from apps.fleet.models import Agent

GATED_MEASURES = (BudgetMeasure.LLM_USD, BudgetMeasure.TOKENS)


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


def _estimate_usd(request: GateRequest, now: datetime) -> Decimal | None:
    """The call's highest cost: the agent's own estimate, or its input and max_tokens of
    output at the price in force (None: the model has no price)."""
    if request.estimated_cost_usd is not None:
        return request.estimated_cost_usd
    from apps.costs.models import ModelPrice
    from apps.costs.pricing import PriceBook

    book = PriceBook(ModelPrice.objects.filter(provider=request.provider.lower()))
    price = book.price_for(request.provider.lower(), request.model, now)
    if price is None:
        return None
    per_token = Decimal(1_000_000)
    return (
        request.input_tokens * price.input_usd_per_mtok
        + request.max_tokens * price.output_usd_per_mtok
    ) / per_token


def _held(budget: Budget, now: datetime) -> Decimal:
    return GateHold.objects.filter(
        budget=budget, settled_at__isnull=True, expires_at__gt=now
    ).aggregate(s=Sum("amount"))["s"] or Decimal(0)


def _spent(budget: Budget, now: datetime) -> tuple[Decimal, Decimal]:
    """(counted this period, cap with the period's allowances)."""
    standing = budget_standing(budget, now)
    return standing.spent, standing.cap


def _throttle_limit(budget: Budget, now: datetime) -> int | None:
    """Calls per minute allowed while a throttle threshold of this period has fired."""
    key = period_key(budget.period, budget.rolling_days, local_day(now, budget.time_zone))
    fired = BudgetCrossing.objects.filter(
        budget=budget, period_start=key, action=ThresholdAction.THROTTLE
    ).values_list("percent", flat=True)
    limits = [
        t.per_minute
        for t in budget.thresholds.all()
        if t.action == ThresholdAction.THROTTLE and t.percent in set(fired) and t.per_minute
    ]
    return min(limits) if limits else None


def gate_check(*, agent: Agent, request: GateRequest, now: datetime | None = None) -> GateAnswer:
    now = now or timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # A reservation is soft state that expires by itself: its commit need not wait
                # for the disk (a crash loses only holds, never an event or a counter).
                cursor.execute("SET LOCAL synchronous_commit = off")
        halted, reason = Agent.objects.values_list("halted", "halted_reason").get(pk=agent.pk)
        if halted:
            return GateAnswer(423, "halt", f"{agent.slug} is halted: {reason}")
        budgets = [
            b
            for b in Budget.objects.filter(active=True, measure__in=GATED_MEASURES)
            .prefetch_related("thresholds")
            .order_by("pk")
            if budget_covers(b, agent.pk, agent.team_id, request.model)
        ]
        if not budgets:
            return _allow(agent, request, [], now, None)
        if connection.features.has_select_for_update:
            list(
                Budget.objects.select_for_update()
                .filter(pk__in=[b.pk for b in budgets])
                .order_by("pk")
                .values("pk")
            )
        return _weigh(agent, request, budgets, now)


def _weigh(
    agent: Agent, request: GateRequest, budgets: Sequence[Budget], now: datetime
) -> GateAnswer:
    estimate_usd = _estimate_usd(request, now) if request.kind == "llm_call" else Decimal(0)
    estimate_tokens = Decimal(request.input_tokens + request.max_tokens)
    figures: list[dict[str, Any]] = []
    holds: list[tuple[Budget, Decimal]] = []
    for budget in budgets:
        spent, cap = _spent(budget, now)
        held = _held(budget, now)
        figures.append(
            {
                "budget": budget.slug,
                "measure": budget.measure,
                "spent": f"{spent.normalize():f}",
                "reserved": f"{held.normalize():f}",
                "cap": f"{cap.normalize():f}",
            }
        )
        limit = _throttle_limit(budget, now)
        if limit is not None:
            window = GateCall.objects.filter(
                agent=agent, created_at__gt=now - timedelta(minutes=1)
            ).order_by("created_at")
            recent = list(window.values_list("created_at", flat=True)[:limit])
            if len(recent) >= limit:
                wait = math.ceil((recent[0] + timedelta(minutes=1) - now).total_seconds())
                return GateAnswer(
                    429,
                    "throttle",
                    f"Budget {budget.name} is throttled to {limit} calls a minute per agent.",
                    retry_after=max(wait, 1),
                    budget=budget.slug,
                    budgets=figures,
                )
        halts = [t.percent for t in budget.thresholds.all() if t.action == ThresholdAction.HALT]
        if not halts:
            continue
        if budget.measure == BudgetMeasure.LLM_USD:
            if request.kind != "llm_call":
                continue
            if estimate_usd is None:
                return GateAnswer(
                    503,
                    "unavailable",
                    f"No price for {request.provider}/{request.model}: the call's cost cannot be "
                    f"weighed against budget {budget.name}. Send estimated_cost_usd, or add the "
                    "model's price.",
                    budget=budget.slug,
                    budgets=figures,
                )
            amount = estimate_usd
        else:
            amount = estimate_tokens
        halt_at = cap * min(halts) / 100
        if spent + held + amount > halt_at:
            return GateAnswer(
                423,
                "halt",
                f"This call would cross budget {budget.name}: {spent.normalize():f} counted + "
                f"{held.normalize():f} reserved + {amount.normalize():f} for this call > "
                f"{halt_at.normalize():f}.",
                budget=budget.slug,
                budgets=figures,
            )
        holds.append((budget, amount))
    return _allow(agent, request, holds, now, estimate_usd, figures)


def _allow(
    agent: Agent,
    request: GateRequest,
    holds: Sequence[tuple[Budget, Decimal]],
    now: datetime,
    estimate_usd: Decimal | None,
    figures: list[dict[str, Any]] | None = None,
) -> GateAnswer:
    expires = now + timedelta(seconds=settings.GATE_RESERVATION_SECONDS)
    call = GateCall.objects.create(
        reservation_id=uuid.uuid4(),
        agent=agent,
        kind=request.kind,
        model=request.model[:200],
        estimated_usd=estimate_usd,
        created_at=now,
        expires_at=expires,
    )
    GateHold.objects.bulk_create(
        [GateHold(call=call, budget=b, amount=a, expires_at=expires) for b, a in holds]
    )
    return GateAnswer(
        200,
        "allow",
        "Within every budget that covers this call.",
        reservation_id=str(call.reservation_id),
        budgets=figures or [],
    )


def gate_calls_settle(reservation_ids: Sequence[str], now: datetime) -> int:
    """Called by ingest for llm_calls carrying a reservation_id: their spend is now counted,
    so their holds end."""
    ids = []
    for value in reservation_ids:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    if not ids:
        return 0
    GateHold.objects.filter(call_id__in=ids, settled_at__isnull=True).update(settled_at=now)
    return GateCall.objects.filter(reservation_id__in=ids, settled_at__isnull=True).update(
        settled_at=now
    )
