"""Reads of the cost app."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Max, Min, Q, Sum

from apps.costs.models import CostDriverRate, CostSource, LlmUsage, ModelPrice


@dataclass(frozen=True)
class UnpricedModel:
    provider: str
    model: str
    calls: int
    first_ts: datetime
    last_ts: datetime


def unpriced_models() -> list[UnpricedModel]:
    """Models with stored calls the price table could not price, most calls first (served by
    the partial index on unpriced rows)."""
    rows = (
        LlmUsage.objects.filter(cost_source=CostSource.UNPRICED)
        .values("provider", "model")
        .annotate(calls=Count("pk"), first_ts=Min("ts"), last_ts=Max("ts"))
        .order_by("-calls", "provider", "model")
    )
    return [UnpricedModel(**row) for row in rows]


def price_rows() -> list[ModelPrice]:
    """Every price row, newest first per model, with what corrected it (one query)."""
    return list(
        ModelPrice.objects.select_related("created_by", "corrects", "correction").order_by(
            "provider", "model", "-effective_from", "-id"
        )
    )


def driver_rate_rows() -> list[CostDriverRate]:
    return list(
        CostDriverRate.objects.select_related("created_by").order_by(
            "kind", "tool", "-effective_from"
        )
    )


@dataclass(frozen=True)
class ActionLlmTotals:
    cost_usd: Decimal | None
    energy_wh: Decimal
    calls: int


def action_llm_totals(action_ids: Iterable[str]) -> dict[str, ActionLlmTotals]:
    """LLM cost and energy of each action that has llm_calls, by action_id. Cost is None when
    any of its calls is unpriced: a partial sum would pass for the whole. One query."""
    ids = list(set(action_ids))
    if not ids:
        return {}
    rows = (
        LlmUsage.objects.filter(action_id__in=ids)
        .values("action_id")
        .annotate(
            cost=Sum("cost_usd"),
            wh=Sum("energy_wh"),
            calls=Count("pk"),
            unpriced=Count("pk", filter=Q(cost_source=CostSource.UNPRICED)),
        )
        .order_by()
    )
    return {
        str(row["action_id"]): ActionLlmTotals(
            cost_usd=None if row["unpriced"] else row["cost"],
            energy_wh=row["wh"],
            calls=row["calls"],
        )
        for row in rows
    }
