"""The demo bill: 30 days of tagged FOCUS rows, imported and allocated, once."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db.models import Sum

from apps.billing.models import AllocationRule, BillingImport, CostAllocation, CostLineItem
from apps.demo.billing import demo_bill_seed
from apps.demo.generator import DEMO_AGENTS, DEMO_TEAMS
from apps.fleet.models import Agent, Team
from tests.allocation.conftest import assert_exact

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_fleet() -> None:
    for slug, name, cost_centre in DEMO_TEAMS:
        Team.objects.create(slug=slug, name=name, cost_centre=cost_centre)
    for spec in DEMO_AGENTS:
        Agent.objects.create(slug=spec.slug, team=Team.objects.get(slug=spec.team))


def test_demo_bill_is_imported_and_allocated_once(demo_fleet):
    anchor = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
    first = demo_bill_seed(anchor=anchor)
    assert (first.rows, first.rules_created, first.already_imported) == (540, 5, False)
    assert list(AllocationRule.objects.values_list("name", flat=True)) == [
        "Agent tag",
        "Shared Kubernetes cluster",
        "Shared logging",
        "Team tag",
        "Cost centre",
    ]
    span = CostLineItem.objects.order_by("charge_period_start")
    assert span.first().charge_period_start == datetime(2026, 10, 27, tzinfo=UTC)
    assert span.last().charge_period_start == datetime(2026, 11, 25, tzinfo=UTC)
    by_method = dict(
        CostAllocation.objects.values_list("method").annotate(n=Sum(1)).order_by("method")
    )
    # 8 agents and 3+3 team rows a day are owned; the cluster and logs (no actions or tokens
    # here) are split evenly over the 3 teams; transfer and KMS stay unallocated.
    assert by_method == {"shared_even": 30 * 2 * 3, "tag": 30 * 14, "unallocated": 30 * 2}
    assert_exact()

    again = demo_bill_seed(anchor=anchor)
    assert (again.rows, again.rules_created, again.already_imported) == (0, 0, True)
    assert BillingImport.objects.count() == 1
    assert CostLineItem.objects.count() == 540
    total = CostLineItem.objects.aggregate(s=Sum("billed_cost"))["s"]
    assert CostAllocation.objects.aggregate(s=Sum("billed_cost"))["s"] == total > Decimal(1000)
