"""The demo's cloud bill: the last full 30 days before the demo's anchor, as FinOps FOCUS rows
tagged for the demo teams and agents, plus a shared Kubernetes cluster, a shared logging
service and some untagged spend. It is imported through the real import service, so the
allocation rules (the demo's own, unless someone has rules already) allocate it."""

import csv
import json
import random
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apps.billing.models import AllocationRule, BillingImport, ImportStatus
from apps.demo.generator import DEMO_AGENTS, DEMO_SEED, DEMO_TEAMS

DEMO_BILL_NAME = "opsdash-demo-focus.csv"
DAYS = 30
HEADER = [
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeCategory",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ProviderName",
    "ServiceName",
    "ResourceId",
    "RegionId",
    "SkuId",
    "ConsumedQuantity",
    "ConsumedUnit",
    "Tags",
]
# What each demo service consumed in a day, in its own unit: enough for the Cloud Carbon
# Footprint-style estimate to read (instance types in SKU ids, GB-months, GB moved).
USAGE = {
    "Amazon Elastic Compute Cloud": ("BoxUsage:m5.xlarge", "24", "Hours"),
    "Amazon Relational Database Service": ("InstanceUsage:db.r5.large", "24", "Hours"),
    "Amazon Simple Storage Service": ("TimedStorage-ByteHrs", "38.5", "GB-Mo"),
    "AWS Data Transfer": ("DataTransfer-Out-Bytes", "212", "GB"),
}
# Whoever has no rules gets these: tags first, then the shared services, then team tags.
DEMO_RULES: list[dict[str, Any]] = [
    {"name": "Agent tag", "kind": "tag", "tag_key": "opsdash-agent", "target": "agent"},
    {
        "name": "Shared Kubernetes cluster",
        "kind": "shared",
        "match_tag_key": "k8s-label:cluster",
        "match_tag_value": "shared-prod",
        "split": "actions",
    },
    {
        "name": "Shared logging",
        "kind": "shared",
        "match_service": "*CloudWatch*",
        "split": "tokens",
    },
    {"name": "Team tag", "kind": "tag", "tag_key": "team", "target": "team"},
    {
        "name": "Cost centre",
        "kind": "tag",
        "tag_key": "cost-centre",
        "target": "team",
        "value_map": {cc: slug for slug, _, cc in DEMO_TEAMS},
    },
]


@dataclass
class DemoBillResult:
    rows: int = 0
    rules_created: int = 0
    already_imported: bool = False


def demo_bill_rows(anchor: datetime) -> list[dict[str, str]]:
    """Daily rows for the 30 full days before `anchor`'s day (UTC)."""
    rng = random.Random(DEMO_SEED + 7)
    end_day = anchor.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rows: list[dict[str, str]] = []

    def row(day: datetime, cost: float, service: str, resource: str, tags: dict[str, str]) -> None:
        month = day.replace(day=1)
        after = month.year * 12 + month.month
        billed = f"{cost:.6f}"
        rows.append(
            {
                "BilledCost": billed,
                "EffectiveCost": f"{cost * 0.82:.6f}" if "Compute" in service else billed,
                "ListCost": f"{cost * 1.1:.6f}",
                "BillingAccountId": "demo-123456789012",
                "BillingCurrency": "USD",
                "BillingPeriodStart": f"{month:%Y-%m-%d}T00:00:00Z",
                "BillingPeriodEnd": f"{after // 12:04d}-{after % 12 + 1:02d}-01T00:00:00Z",
                "ChargeCategory": "Usage",
                "ChargePeriodStart": f"{day:%Y-%m-%d}T00:00:00Z",
                "ChargePeriodEnd": f"{day + timedelta(days=1):%Y-%m-%d}T00:00:00Z",
                "ProviderName": "AWS",
                "ServiceName": service,
                "ResourceId": resource,
                "RegionId": "eu-west-1",
                "SkuId": USAGE.get(service, ("", "", ""))[0],
                "ConsumedQuantity": USAGE.get(service, ("", "", ""))[1],
                "ConsumedUnit": USAGE.get(service, ("", "", ""))[2],
                "Tags": json.dumps(tags, separators=(",", ":")) if tags else "",
            }
        )

    for n in range(DAYS, 0, -1):
        day = end_day - timedelta(days=n)
        for spec in DEMO_AGENTS:
            row(
                day,
                rng.uniform(3, 14),
                "Amazon Elastic Compute Cloud",
                f"i-{spec.slug}",
                {"opsdash-agent": spec.slug, "team": spec.team},
            )
        for slug, _, cost_centre in DEMO_TEAMS:
            row(
                day,
                rng.uniform(1, 6),
                "Amazon Simple Storage Service",
                f"s3-{slug}",
                {"team": slug},
            )
            row(
                day,
                rng.uniform(4, 9),
                "Amazon Relational Database Service",
                f"db-{slug}",
                {"cost-centre": cost_centre},
            )
        row(
            day,
            rng.uniform(40, 55),
            "Amazon Elastic Kubernetes Service",
            "arn:aws:eks:eu-west-1:123456789012:cluster/shared-prod",
            {"k8s-label:cluster": "shared-prod"},
        )
        row(
            day,
            rng.uniform(12, 18),
            "AmazonCloudWatch",
            "log-group/opsdash-agents",
            {"shared": "logging"},
        )
        row(day, rng.uniform(2, 7), "AWS Data Transfer", "", {})
        row(day, rng.uniform(0.5, 2), "AWS Key Management Service", "kms-default", {})
    return rows


def demo_bill_seed(*, anchor: datetime) -> DemoBillResult:
    """Creates the demo rules if there are none, and imports the demo bill once."""
    from apps.billing.rules import rule_create
    from apps.billing.services import billing_import_run, billing_import_start_local

    result = DemoBillResult()
    if not AllocationRule.objects.exists():
        for data in DEMO_RULES:
            rule_create(data=data, user=None, recompute=False)
            result.rules_created += 1
    if BillingImport.objects.filter(file_name=DEMO_BILL_NAME, status=ImportStatus.DONE).exists():
        result.already_imported = True
        return result
    rows = demo_bill_rows(anchor)
    with tempfile.TemporaryDirectory(prefix="opsdash-demo-") as folder:
        path = Path(folder) / DEMO_BILL_NAME
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, HEADER)
            writer.writeheader()
            writer.writerows(rows)
        billing_import = billing_import_start_local(path=path, format="focus")
        billing_import_run(billing_import=billing_import, path=path)
    result.rows = billing_import.rows_imported
    return result
