"""Allocation fixtures: the demo-like fleet, and bills written as FOCUS CSV and imported
through the real import service (so allocation runs as it does for a real upload)."""

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Sum

from apps.billing.models import BillingImport, CostAllocation, CostLineItem
from apps.fleet.models import Agent, Team
from tests.billing.conftest import approver, finops, run_import, sre_lead  # noqa: F401

COLUMNS = [
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
    "Tags",
]


def line(
    cost: str,
    *,
    effective: str | None = None,
    service: str = "Amazon EC2",
    provider: str = "AWS",
    tags: dict[str, str] | None = None,
    resource: str = "",
    day: int = 1,
    month: str = "2026-10",
    currency: str = "USD",
    account: str = "acct-1",
) -> dict[str, str]:
    year, mon = (int(x) for x in month.split("-"))
    nxt = f"{year + mon // 12}-{mon % 12 + 1:02d}"
    return {
        "BilledCost": cost,
        "EffectiveCost": effective if effective is not None else cost,
        "ListCost": cost,
        "BillingAccountId": account,
        "BillingCurrency": currency,
        "BillingPeriodStart": f"{month}-01T00:00:00Z",
        "BillingPeriodEnd": f"{nxt}-01T00:00:00Z",
        "ChargeCategory": "Usage",
        "ChargePeriodStart": f"{month}-{day:02d}T00:00:00Z",
        "ChargePeriodEnd": f"{month}-{day:02d}T23:59:59Z",
        "ProviderName": provider,
        "ServiceName": service,
        "ResourceId": resource,
        "Tags": json.dumps(tags or {}),
    }


def import_bill(
    tmp_path: Path, rows: list[dict[str, str]], name: str = "bill.csv"
) -> BillingImport:
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    imp = run_import(path, "focus")
    assert imp.status == "done", imp.error_message
    return imp


def shares(
    item: CostLineItem | None = None,
) -> list[tuple[str | None, str | None, str, str, Decimal, Decimal]]:
    """(team, agent, method, rule, billed, effective) of every allocation, sorted."""
    rows = CostAllocation.objects.select_related("team", "agent")
    if item is not None:
        rows = rows.filter(line_item=item)
    return sorted(
        (
            (
                a.team.slug if a.team else None,
                a.agent.slug if a.agent else None,
                a.method,
                a.rule_name,
                a.billed_cost.normalize(),
                a.effective_cost.normalize(),
            )
            for a in rows
        ),
        key=lambda r: (r[0] is None, r[0] or "", r[1] or "", r[2], r[4]),
    )


def assert_exact() -> None:
    """Every line item's allocations add up to its own costs, to the last place."""
    for item in CostLineItem.objects.annotate(
        b=Sum("allocations__billed_cost"), e=Sum("allocations__effective_cost")
    ):
        assert (item.b, item.e) == (item.billed_cost, item.effective_cost), item


@pytest.fixture
def fleet(db: Any) -> dict[str, Any]:
    teams = {
        slug: Team.objects.create(slug=slug, name=slug.title())
        for slug in ("data", "payments", "platform")
    }
    agents = {
        slug: Agent.objects.create(slug=slug, team=teams[team], autonomy_mode="suggest")
        for slug, team in (
            ("triage-bot", "platform"),
            ("k8s-healer", "platform"),
            ("queue-medic", "payments"),
            ("db-guardian", "data"),
        )
    }
    return {"teams": teams, "agents": agents}
