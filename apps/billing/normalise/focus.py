"""FinOps FOCUS 1.0 and later, as AWS, Azure, GCP and Oracle export it.

FOCUS 1.3 renamed ProviderName to ServiceProviderName and added HostProviderName beside
PublisherName; both spellings are read. Replacement key: (ServiceProviderName or
ProviderName, BillingAccountId, BillingPeriodStart), straight from the file.
"""

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from apps.billing.models import ChargeCategory
from apps.billing.normalise import parsing as p
from apps.billing.normalise.base import Line, Normaliser

CATEGORIES = {c.value.lower(): c.value for c in ChargeCategory}
# Columns whose few distinct values repeat on most rows, in `_dimensions`' order.
DIMENSIONS = (
    "provider",
    "publisher",
    "account",
    "sub_account",
    "billing_start",
    "billing_end",
    "category",
    "currency",
    "service",
    "region",
    "sku",
    "unit",
)
MEMO_SIZE = 10_000


class FocusNormaliser(Normaliser):
    format = "focus"
    columns = {
        "billed_cost": ("BilledCost",),
        "effective_cost": ("EffectiveCost",),
        "list_cost": ("ListCost",),
        "currency": ("BillingCurrency",),
        "charge_start": ("ChargePeriodStart",),
        "charge_end": ("ChargePeriodEnd",),
        "billing_start": ("BillingPeriodStart",),
        "billing_end": ("BillingPeriodEnd",),
        "category": ("ChargeCategory",),
        "provider": ("ServiceProviderName", "ProviderName"),
        "publisher": ("HostProviderName", "PublisherName"),
        "account": ("BillingAccountId",),
        "sub_account": ("SubAccountId",),
        "service": ("ServiceName",),
        "resource": ("ResourceId",),
        "region": ("RegionId", "Region"),
        "sku": ("SkuId",),
        "quantity": ("ConsumedQuantity",),
        "unit": ("ConsumedUnit",),
        "tags": ("Tags",),
    }
    required = (
        "billed_cost",
        "effective_cost",
        "list_cost",
        "currency",
        "charge_start",
        "charge_end",
        "billing_start",
        "billing_end",
        "category",
        "provider",
        "account",
    )

    def __init__(self) -> None:
        super().__init__()
        self.ts = p.TimestampParser()
        # A bill repeats the same provider / account / period / service / SKU combination on
        # thousands of rows (one per hour and resource), and the same tag sets: each distinct
        # one is normalised once. Bounded: cleared when full.
        self.dimensions: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self.tag_sets: dict[str, dict[str, str]] = {}
        self.dimension_values: Callable[[Sequence[Any]], tuple[Any, ...]] = tuple

    def bind(self, header: Sequence[str]) -> list[int]:
        used = super().bind(header)
        self.dimension_values = itemgetter(*(self.ix[name] for name in DIMENSIONS))
        return used

    def normalise(self, values: Sequence[Any]) -> Line:
        v, ix, nm = values, self.ix, self.names
        raw = self.dimension_values(v)
        try:
            dims = self.dimensions.get(raw)
            hashable = True
        except TypeError:  # a Parquet list or map where text belongs: not memoised
            dims, hashable = None, False
        if dims is None:
            dims = self._dimensions(v)
            if hashable:
                if len(self.dimensions) >= MEMO_SIZE:
                    self.dimensions.clear()
                self.dimensions[raw] = dims
        raw_tags = v[ix["tags"]]
        tags = self.tag_sets.get(raw_tags) if isinstance(raw_tags, str) else None
        if tags is None:
            tags = p.tags(raw_tags, nm["tags"])
            if isinstance(raw_tags, str):
                if len(self.tag_sets) >= MEMO_SIZE:
                    self.tag_sets.clear()
                self.tag_sets[raw_tags] = tags
        provider, publisher, account, sub_account, bstart, bend, category, currency = dims[:8]
        service, region, sku, unit = dims[8:]
        return Line(
            provider,
            publisher,
            account,
            sub_account,
            bstart,
            bend,
            self.ts(v[ix["charge_start"]], nm["charge_start"]),
            self.ts(v[ix["charge_end"]], nm["charge_end"]),
            category,
            p.money(v[ix["billed_cost"]], nm["billed_cost"]),
            p.money(v[ix["effective_cost"]], nm["effective_cost"]),
            p.money_or_none(v[ix["list_cost"]], nm["list_cost"]),
            currency,
            service,
            p.text(v[ix["resource"]], nm["resource"], p.MAX_RESOURCE_ID_CHARS),
            region,
            sku,
            p.money_or_none(v[ix["quantity"]], nm["quantity"]),
            unit,
            tags,
        )

    def _dimensions(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """The DIMENSIONS, normalised (raises RowError as any cell would)."""
        v, ix, nm, ts = values, self.ix, self.names, self.ts
        return (
            p.required_text(v[ix["provider"]], nm["provider"], 128),
            p.text(v[ix["publisher"]], nm["publisher"], 128),
            p.required_text(v[ix["account"]], nm["account"]),
            p.text(v[ix["sub_account"]], nm["sub_account"]),
            ts(v[ix["billing_start"]], nm["billing_start"]),
            ts(v[ix["billing_end"]], nm["billing_end"]),
            p.enum(v[ix["category"]], nm["category"], CATEGORIES),
            p.currency(v[ix["currency"]], nm["currency"]),
            p.text(v[ix["service"]], nm["service"]),
            p.text(v[ix["region"]], nm["region"], 128),
            p.text(v[ix["sku"]], nm["sku"]),
            p.text(v[ix["unit"]], nm["unit"], 128),
        )
