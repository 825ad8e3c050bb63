"""Azure Cost Management cost details export (EA and MCA; actual or amortized), CSV.

EA spells columns `CostInBillingCurrency`, MCA `costInBillingCurrency`: matched without
regard to case. `Date` and the billing period dates are MM/DD/YYYY (or ISO); the billing
period end date is the period's last day, so the exclusive FOCUS end is the day after. Tags
are JSON with or without the surrounding braces (`"team": "platform","env": "prod"`).

Replacement key: ("Microsoft", BillingAccountId, BillingPeriodStartDate).

FOCUS mapping: BilledCost and EffectiveCost are CostInBillingCurrency (the amortized
export's values are already effective), ListCost is PaygCostInBillingCurrency, or PayGPrice
times Quantity when only the price is exported.
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from apps.billing.normalise import parsing as p
from apps.billing.normalise.base import Line, Normaliser

CHARGE_TYPES = {
    "usage": "Usage",
    "unusedreservation": "Usage",
    "unusedsavingsplan": "Usage",
    "purchase": "Purchase",
    "refund": "Credit",
    "credit": "Credit",
    "tax": "Tax",
    "roundingadjustment": "Adjustment",
    "adjustment": "Adjustment",
}
ONE_DAY = timedelta(days=1)


class AzureNormaliser(Normaliser):
    format = "azure"
    columns = {
        "cost": ("CostInBillingCurrency",),
        "currency": ("BillingCurrencyCode", "BillingCurrency"),
        "date": ("Date", "UsageDate"),
        "account": ("BillingAccountId",),
        "billing_start": ("BillingPeriodStartDate",),
        "billing_end": ("BillingPeriodEndDate",),
        "sub_account": ("SubscriptionId", "SubscriptionGuid"),
        "service": ("MeterCategory", "ConsumedService"),
        "resource": ("ResourceId", "InstanceName"),
        "region": ("ResourceLocation",),
        "sku": ("MeterId",),
        "quantity": ("Quantity",),
        "unit": ("UnitOfMeasure",),
        "tags": ("Tags",),
        "charge_type": ("ChargeType",),
        "payg_cost": ("PaygCostInBillingCurrency",),
        "payg_price": ("PayGPrice",),
    }
    required = ("cost", "currency", "date", "account", "billing_start")

    def __init__(self) -> None:
        super().__init__()
        self.ts = p.TimestampParser()

    def normalise(self, values: Sequence[Any]) -> Line:
        v, ix, nm, ts = values, self.ix, self.names, self.ts
        day = ts(v[ix["date"]], nm["date"])
        billing_start = ts(v[ix["billing_start"]], nm["billing_start"])
        last_day = ts.parse_or_none(v[ix["billing_end"]], nm["billing_end"])
        cost = p.money(v[ix["cost"]], nm["cost"])
        quantity = p.money_or_none(v[ix["quantity"]], nm["quantity"])
        list_cost = p.money_or_none(v[ix["payg_cost"]], nm["payg_cost"])
        if list_cost is None and quantity is not None:
            price = p.money_or_none(v[ix["payg_price"]], nm["payg_price"])
            if price is not None:
                list_cost = p.money(p.WIDE.multiply(price, quantity), nm["payg_price"])
        return Line(
            provider="Microsoft",
            publisher="",
            billing_account_id=p.required_text(v[ix["account"]], nm["account"]),
            sub_account_id=p.text(v[ix["sub_account"]], nm["sub_account"]),
            billing_period_start=billing_start,
            billing_period_end=last_day + ONE_DAY if last_day else p.next_month(billing_start),
            charge_period_start=day,
            charge_period_end=day + ONE_DAY,
            charge_category=p.enum(
                v[ix["charge_type"]], nm["charge_type"], CHARGE_TYPES, default="Usage"
            ),
            billed_cost=cost,
            effective_cost=cost,
            list_cost=list_cost,
            billing_currency=p.currency(v[ix["currency"]], nm["currency"]),
            service_name=p.text(v[ix["service"]], nm["service"]),
            resource_id=p.text(v[ix["resource"]], nm["resource"], p.MAX_RESOURCE_ID_CHARS),
            region_id=p.text(v[ix["region"]], nm["region"], 128),
            sku_id=p.text(v[ix["sku"]], nm["sku"]),
            consumed_quantity=quantity,
            consumed_unit=p.text(v[ix["unit"]], nm["unit"], 128),
            tags=p.tags(v[ix["tags"]], nm["tags"]),
        )
