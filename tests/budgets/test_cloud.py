"""Cloud-spend budgets move with the bills: up on import, down when a bill is restated."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from apps.billing.rules import rule_create
from apps.billing.services import billing_import_run, billing_import_start_local
from apps.budgets.models import BudgetCrossing
from apps.budgets.selectors import budget_standing
from apps.budgets.services import budget_create

pytestmark = pytest.mark.django_db

HEADER = (
    "BilledCost,BillingAccountId,BillingCurrency,BillingPeriodEnd,BillingPeriodStart,"
    "ChargeCategory,ChargePeriodEnd,ChargePeriodStart,EffectiveCost,ListCost,ProviderName,"
    "ServiceName,Tags\n"
)


def bill(tmp_path: Path, name: str, *costs: str) -> Path:
    """A FOCUS bill for this month, one line a day from the 1st, tagged to triage-bot."""
    now = datetime.now(UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (month.replace(day=28) + (month.replace(day=28) - month.replace(day=24))).replace(
        day=1
    )
    lines = [HEADER]
    for day, cost in enumerate(costs, start=1):
        start = month.replace(day=day)
        end = start.replace(day=day + 1) if day < 28 else following
        lines.append(
            f"{cost},acct-1,USD,{following:%Y-%m-%dT%H:%M:%SZ},{month:%Y-%m-%dT%H:%M:%SZ},Usage,"
            f"{end:%Y-%m-%dT%H:%M:%SZ},{start:%Y-%m-%dT%H:%M:%SZ},{cost},{cost},AWS,Amazon EC2,"
            '"{""opsdash-agent"":""triage-bot""}"\n'
        )
    path = tmp_path / name
    path.write_text("".join(lines))
    return path


def run(path: Path) -> None:
    imported = billing_import_start_local(path=path, format="focus")
    done = billing_import_run(billing_import=imported, path=path)
    assert done.status == "done", (done.error_message, done.row_errors)


def test_a_cloud_budget_counts_the_allocated_bill_and_goes_down_when_it_is_restated(
    tmp_path, agent, make_person
):
    make_person("fay", "finops")
    rule_create(
        data={"name": "Agent tag", "kind": "tag", "tag_key": "opsdash-agent", "target": "agent"},
        user=None,
        recompute=False,
    )
    budget = budget_create(
        slug="cloud",
        name="Triage cloud",
        scope="agent",
        agent=agent,
        measure="cloud_cost",
        period="monthly",
        cap=Decimal("100"),
    )
    run(bill(tmp_path, "first.csv", "30.00", "25.50"))
    assert budget_standing(budget).spent == Decimal("55.50")
    assert [c.percent for c in BudgetCrossing.objects.filter(budget=budget)] == [Decimal(50)]
    run(bill(tmp_path, "restated.csv", "10.00", "5.25"))  # the provider restated the month
    assert budget_standing(budget).spent == Decimal("15.25")
    run(bill(tmp_path, "grown.csv", "60.00", "45.00"))
    agent.refresh_from_db()
    assert agent.halted
    assert agent.halted_reason.startswith("Budget Triage cloud: 105.00 USD of 100.00 USD")
