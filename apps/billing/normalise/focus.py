"""FinOps FOCUS 1.0 and later, as AWS, Azure, GCP and Oracle export it.

FOCUS 1.3 renamed ProviderName to ServiceProviderName and added HostProviderName beside
PublisherName; both spellings are read. Replacement key: (ServiceProviderName or
ProviderName, BillingAccountId, BillingPeriodStart), straight from the file.
"""

from collections.abc import Sequence
from typing import Any

from apps.billing.models import ChargeCategory
from apps.billing.normalise import parsing as p
from apps.billing.normalise.base import Line, Normaliser

CATEGORIES = {c.value.lower(): c.value for c in ChargeCategory}


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

    def normalise(self, values: Sequence[Any]) -> Line:
        v, ix, nm, ts = values, self.ix, self.names, self.ts
        return Line(
            provider=p.required_text(v[ix["provider"]], nm["provider"], 128),
            publisher=p.text(v[ix["publisher"]], nm["publisher"], 128),
            billing_account_id=p.required_text(v[ix["account"]], nm["account"]),
            sub_account_id=p.text(v[ix["sub_account"]], nm["sub_account"]),
            billing_period_start=ts(v[ix["billing_start"]], nm["billing_start"]),
            billing_period_end=ts(v[ix["billing_end"]], nm["billing_end"]),
            charge_period_start=ts(v[ix["charge_start"]], nm["charge_start"]),
            charge_period_end=ts(v[ix["charge_end"]], nm["charge_end"]),
            charge_category=p.enum(v[ix["category"]], nm["category"], CATEGORIES),
            billed_cost=p.money(v[ix["billed_cost"]], nm["billed_cost"]),
            effective_cost=p.money(v[ix["effective_cost"]], nm["effective_cost"]),
            list_cost=p.money_or_none(v[ix["list_cost"]], nm["list_cost"]),
            billing_currency=p.currency(v[ix["currency"]], nm["currency"]),
            service_name=p.text(v[ix["service"]], nm["service"]),
            resource_id=p.text(v[ix["resource"]], nm["resource"], p.MAX_RESOURCE_ID_CHARS),
            region_id=p.text(v[ix["region"]], nm["region"], 128),
            sku_id=p.text(v[ix["sku"]], nm["sku"]),
            consumed_quantity=p.money_or_none(v[ix["quantity"]], nm["quantity"]),
            consumed_unit=p.text(v[ix["unit"]], nm["unit"], 128),
            tags=p.tags(v[ix["tags"]], nm["tags"]),
        )
