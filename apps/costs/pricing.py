"""Prices of llm_calls from the price table: pure functions, no queries (token conventions:
apps.costs.tokens)."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from apps.costs.models import ModelPrice
from apps.costs.patterns import pattern_matches, specificity
from apps.costs.tokens import TokenUsage

MTOK = Decimal(1_000_000)
USD_QUANTUM = Decimal("0.000000001")  # the precision of reported costs (apps.audit)


def usage_cost(usage: TokenUsage, price: ModelPrice) -> Decimal:
    """USD for the call at this price, to 1e-9 USD (banker's rounding, once, at the end)."""
    total = (
        usage.input * price.input_usd_per_mtok
        + usage.output * price.output_usd_per_mtok
        + usage.cache_write_5m * price.cache_write_5m_usd_per_mtok
        + usage.cache_write_1h * price.cache_write_1h_usd_per_mtok
        + usage.cache_read * price.cache_read_usd_per_mtok
    )
    if usage.batch:
        # Anthropic's batch discount applies to every token class, cache ones included.
        total *= 1 - price.batch_discount
    return (total / MTOK).quantize(USD_QUANTUM, rounding=ROUND_HALF_EVEN)


class PriceBook:
    """The price rows in force, resolved per (provider, model, moment) without queries."""

    def __init__(self, rows: Iterable[ModelPrice]) -> None:
        rows = list(rows)
        superseded = {r.corrects_id for r in rows if r.corrects_id is not None}
        self._by_provider: dict[str, list[ModelPrice]] = defaultdict(list)
        for row in rows:
            if row.pk not in superseded:
                self._by_provider[row.provider].append(row)
        self._candidates: dict[tuple[str, str], list[ModelPrice]] = {}

    def price_for(self, provider: str, model: str, at: datetime) -> ModelPrice | None:
        """The most specific pattern matching the model, at its latest effective date ≤ `at`
        (a call exactly at a row's effective moment takes that row)."""
        key = (provider, model)
        candidates = self._candidates.get(key)
        if candidates is None:
            candidates = sorted(
                (r for r in self._by_provider.get(provider, ()) if pattern_matches(r.model, model)),
                key=lambda r: (specificity(r.model), r.effective_from, r.pk),
                reverse=True,
            )
            self._candidates[key] = candidates
        for row in candidates:
            if row.effective_from <= at:
                return row
        return None
