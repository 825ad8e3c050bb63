"""Google Cloud Billing export (standard or detailed usage cost), as BigQuery writes it to
CSV with flattened dotted column names (`service.description`), or to Parquet with structs
(flattened the same way by the reader). `labels` and `credits` are JSON arrays in CSV.

Replacement key: ("Google Cloud", billing_account_id, invoice.month); without invoice.month,
the month of usage_start_time.

FOCUS mapping: BilledCost is `cost` plus the credits on the row (what the invoice charges),
EffectiveCost the same, ListCost `cost_at_list` when exported.
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from apps.billing.normalise import parsing as p
from apps.billing.normalise.base import Line, Normaliser

COST_TYPES = {
    "regular": "Usage",
    "tax": "Tax",
    "adjustment": "Adjustment",
    "roundingerror": "Adjustment",
    "credit": "Credit",
}


def _alts(dotted: str) -> tuple[str, ...]:
    return (dotted, dotted.replace(".", "_"))


class GcpNormaliser(Normaliser):
    format = "gcp"
    columns = {
        "cost": ("cost",),
        "currency": ("currency",),
        "start": ("usage_start_time",),
        "end": ("usage_end_time",),
        "account": ("billing_account_id",),
        "service": _alts("service.description"),
        "invoice_month": _alts("invoice.month"),
        "sku": _alts("sku.id"),
        "project": _alts("project.id"),
        "region": _alts("location.region"),
        "location": _alts("location.location"),
        "quantity": _alts("usage.amount"),
        "unit": _alts("usage.unit"),
        "labels": ("labels",),
        "list_cost": ("cost_at_list",),
        "credits": ("credits",),
        "cost_type": ("cost_type",),
        "resource": (*_alts("resource.global_name"), *_alts("resource.name")),
    }
    required = ("cost", "currency", "start", "end", "account", "service")

    def __init__(self) -> None:
        super().__init__()
        self.ts = p.TimestampParser()

    def normalise(self, values: Sequence[Any]) -> Line:
        v, ix, nm, ts = values, self.ix, self.names, self.ts
        start = ts(v[ix["start"]], nm["start"])
        period = self._invoice_month(v[ix["invoice_month"]]) or p.month_start(start)
        cost = p.WIDE.add(p.money(v[ix["cost"]], nm["cost"]), self._credits(v[ix["credits"]]))
        return Line(
            provider="Google Cloud",
            publisher="",
            billing_account_id=p.required_text(v[ix["account"]], nm["account"]),
            sub_account_id=p.text(v[ix["project"]], nm["project"]),
            billing_period_start=period,
            billing_period_end=p.next_month(period),
            charge_period_start=start,
            charge_period_end=ts(v[ix["end"]], nm["end"]),
            charge_category=p.enum(
                v[ix["cost_type"]], nm["cost_type"], COST_TYPES, default="Usage"
            ),
            billed_cost=cost,
            effective_cost=cost,
            list_cost=p.money_or_none(v[ix["list_cost"]], nm["list_cost"]),
            billing_currency=p.currency(v[ix["currency"]], nm["currency"]),
            service_name=p.text(v[ix["service"]], nm["service"]),
            resource_id=p.text(v[ix["resource"]], nm["resource"], p.MAX_RESOURCE_ID_CHARS),
            region_id=p.text(v[ix["region"]], nm["region"], 128)
            or p.text(v[ix["location"]], nm["location"], 128),
            sku_id=p.text(v[ix["sku"]], nm["sku"]),
            consumed_quantity=p.money_or_none(v[ix["quantity"]], nm["quantity"]),
            consumed_unit=p.text(v[ix["unit"]], nm["unit"], 128),
            tags=p.tags(v[ix["labels"]], nm["labels"]),
        )

    def _invoice_month(self, value: Any) -> datetime | None:
        raw = p.text(value, self.names["invoice_month"], 16)
        if not raw:
            return None
        if len(raw) != 6 or not raw.isdigit() or not 1 <= int(raw[4:]) <= 12:
            raise p.RowError(self.names["invoice_month"], f"not a YYYYMM month: {p.excerpt(raw)!r}")
        return datetime(int(raw[:4]), int(raw[4:]), 1, tzinfo=UTC)

    def _credits(self, value: Any) -> Decimal:
        column = self.names["credits"]
        if p.is_blank(value):
            return Decimal(0)
        items = value
        if isinstance(value, str):
            if len(value) > p.MAX_TAGS_CHARS:
                raise p.RowError(column, "too long")
            try:
                # Amounts straight to Decimal: never through a float.
                items = json.loads(value, parse_float=Decimal, parse_int=Decimal)
            except (ValueError, RecursionError):
                raise p.RowError(
                    column, f"credits are not valid JSON: {p.excerpt(value)!r}"
                ) from None
        if not isinstance(items, list):
            raise p.RowError(column, "credits must be a JSON array of {name, amount}")
        total = Decimal(0)
        for item in items:
            if not isinstance(item, dict):
                raise p.RowError(column, "credits must be a JSON array of {name, amount}")
            total = p.WIDE.add(total, p.money(item.get("amount"), f"{column}.amount"))
        return total
