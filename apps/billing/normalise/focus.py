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
        get, name, ts = self.get, self.column_name, self.ts
        return Line(
            provider=p.required_text(get(values, "provider"), name("provider"), 128),
            publisher=p.text(get(values, "publisher"), name("publisher"), 128),
            billing_account_id=p.required_text(get(values, "account"), name("account")),
            sub_account_id=p.text(get(values, "sub_account"), name("sub_account")),
            billing_period_start=ts(get(values, "billing_start"), name("billing_start")),
            billing_period_end=ts(get(values, "billing_end"), name("billing_end")),
            charge_period_start=ts(get(values, "charge_start"), name("charge_start")),
            charge_period_end=ts(get(values, "charge_end"), name("charge_end")),
            charge_category=p.enum(get(values, "category"), name("category"), CATEGORIES),
            billed_cost=p.money(get(values, "billed_cost"), name("billed_cost")),
            effective_cost=p.money(get(values, "effective_cost"), name("effective_cost")),
            list_cost=p.money_or_none(get(values, "list_cost"), name("list_cost")),
            billing_currency=p.currency(get(values, "currency"), name("currency")),
            service_name=p.text(get(values, "service"), name("service")),
            resource_id=p.text(get(values, "resource"), name("resource"), p.MAX_RESOURCE_ID_CHARS),
            region_id=p.text(get(values, "region"), name("region"), 128),
            sku_id=p.text(get(values, "sku"), name("sku")),
            consumed_quantity=p.money_or_none(get(values, "quantity"), name("quantity")),
            consumed_unit=p.text(get(values, "unit"), name("unit"), 128),
            tags=p.tags(get(values, "tags"), name("tags")),
        )
