"""AWS Cost and Usage Report 2.0 (Data Exports), CSV or Parquet.

Also reads the legacy CUR spelling (`lineItem/UnblendedCost`, `bill/BillingPeriodStartDate`)
by turning it into the CUR 2.0 one, and tags as the `resource_tags` map (CUR 2.0) or as
per-key columns (`resourceTags/user:team` in legacy CSV, `resource_tags_user_team` in
Athena). The `user:` prefix AWS puts on user-defined tag keys is dropped (`team`);
AWS-generated keys keep theirs (`aws:createdBy`).

Replacement key: ("AWS", bill_payer_account_id, bill_billing_period_start_date).

FOCUS mapping (as AWS's own FOCUS export does it, simplified): BilledCost is the unblended
cost; EffectiveCost is the reservation or Savings Plan effective cost for covered usage,
zero for Savings Plan negations and upfront fees, and the unblended cost otherwise;
ListCost is pricing_public_on_demand_cost.
"""

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from apps.billing.normalise import parsing as p
from apps.billing.normalise.base import Line, Normaliser

LINE_ITEM_TYPES = {
    "usage": "Usage",
    "discountedusage": "Usage",
    "savingsplancoveredusage": "Usage",
    "savingsplannegation": "Usage",
    "tax": "Tax",
    "credit": "Credit",
    "refund": "Credit",
    "bundleddiscount": "Credit",
    "edpdiscount": "Credit",
    "privateratediscount": "Credit",
    "distributordiscount": "Credit",
    "discount": "Credit",
    "fee": "Purchase",
    "rifee": "Purchase",
    "savingsplanrecurringfee": "Purchase",
    "savingsplanupfrontfee": "Purchase",
}
ZERO_EFFECTIVE = frozenset({"savingsplannegation", "savingsplanupfrontfee"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
ZERO = Decimal(0)


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _tag_key(raw: str) -> str:
    for prefix in ("user:", "user_"):
        if raw.startswith(prefix):
            return raw[len(prefix) :]
    return raw


class AwsCur2Normaliser(Normaliser):
    format = "aws-cur2"
    columns = {
        "cost": ("line_item_unblended_cost",),
        "currency": ("line_item_currency_code",),
        "start": ("line_item_usage_start_date",),
        "end": ("line_item_usage_end_date",),
        "billing_start": ("bill_billing_period_start_date",),
        "billing_end": ("bill_billing_period_end_date",),
        "account": ("bill_payer_account_id",),
        "sub_account": ("line_item_usage_account_id",),
        "type": ("line_item_line_item_type",),
        "service": ("product_product_name", "product_servicecode"),
        "service_code": ("line_item_product_code",),
        "resource": ("line_item_resource_id",),
        "region": ("product_region_code", "product_region"),
        "sku": ("product_sku",),
        "quantity": ("line_item_usage_amount",),
        "unit": ("pricing_unit",),
        "tags": ("resource_tags",),
        "list_cost": ("pricing_public_on_demand_cost",),
        "ri_effective": ("reservation_effective_cost",),
        "sp_effective": ("savings_plan_savings_plan_effective_cost",),
    }
    required = (
        "cost",
        "currency",
        "start",
        "end",
        "billing_start",
        "account",
        "type",
    )

    def __init__(self) -> None:
        super().__init__()
        self.ts = p.TimestampParser()

    def canonical(self, name: str) -> str:
        name = name.strip()
        if "/" in name and not name.lower().startswith("resourcetags/"):
            group, _, attribute = name.partition("/")
            return f"{_snake(group)}_{_snake(attribute)}"
        return name.lower()

    def tag_key(self, name: str) -> str | None:
        if name.lower().startswith("resourcetags/"):
            return _tag_key(name.partition("/")[2]) or None
        if name.lower().startswith("resource_tags_"):
            return _tag_key(name[len("resource_tags_") :]) or None
        return None

    def normalise(self, values: Sequence[Any]) -> Line:
        v, ix, nm, ts = values, self.ix, self.names, self.ts
        raw_type = p.required_text(v[ix["type"]], nm["type"], 64)
        kind = raw_type.lower().replace(" ", "").replace("_", "")
        category = LINE_ITEM_TYPES.get(kind)
        if category is None:
            raise p.RowError(nm["type"], f"unknown line item type {p.excerpt(raw_type)!r}")
        cost = p.money(v[ix["cost"]], nm["cost"])
        effective: Decimal | None = cost
        if kind == "discountedusage":
            effective = p.money_or_none(v[ix["ri_effective"]], nm["ri_effective"])
        elif kind == "savingsplancoveredusage":
            effective = p.money_or_none(v[ix["sp_effective"]], nm["sp_effective"])
        elif kind in ZERO_EFFECTIVE:
            effective = ZERO
        billing_start = ts(v[ix["billing_start"]], nm["billing_start"])
        billing_end = ts.parse_or_none(v[ix["billing_end"]], nm["billing_end"])
        tag_map = {_tag_key(k): v for k, v in p.tags(v[ix["tags"]], nm["tags"]).items()}
        if self.tag_columns:
            tag_map.update(self.extra_tags(values))
        return Line(
            provider="AWS",
            publisher="",
            billing_account_id=p.required_text(v[ix["account"]], nm["account"]),
            sub_account_id=p.text(v[ix["sub_account"]], nm["sub_account"]),
            billing_period_start=billing_start,
            billing_period_end=billing_end or p.next_month(billing_start),
            charge_period_start=ts(v[ix["start"]], nm["start"]),
            charge_period_end=ts(v[ix["end"]], nm["end"]),
            charge_category=category,
            billed_cost=cost,
            effective_cost=cost if effective is None else effective,
            list_cost=p.money_or_none(v[ix["list_cost"]], nm["list_cost"]),
            billing_currency=p.currency(v[ix["currency"]], nm["currency"]),
            service_name=p.text(v[ix["service"]], nm["service"])
            or p.text(v[ix["service_code"]], nm["service_code"]),
            resource_id=p.text(v[ix["resource"]], nm["resource"], p.MAX_RESOURCE_ID_CHARS),
            region_id=p.text(v[ix["region"]], nm["region"], 128),
            sku_id=p.text(v[ix["sku"]], nm["sku"]),
            consumed_quantity=p.money_or_none(v[ix["quantity"]], nm["quantity"]),
            consumed_unit=p.text(v[ix["unit"]], nm["unit"], 128),
            tags=tag_map,
        )
