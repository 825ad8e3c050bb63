"""The Energy page: LLM and cloud energy by a dimension, measured and estimated apart, cloud
energy given to teams by their cost allocation. Every figure worked out by hand."""

import csv
import io
import re
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from apps.billing.models import CostAllocation, CostLineItem
from apps.costs.cloud_energy import cloud_energy_config
from apps.costs.models import EnergySource, LlmUsage
from apps.fleet.models import Team
from tests.billing.conftest import run_import, write_csv
from tests.costs.conftest import call, ingest
from tests.costs.test_cloud_energy import HEADER, ROWS, row

pytestmark = pytest.mark.django_db
NOON = datetime(2026, 10, 1, 12, tzinfo=UTC)
URL = "/costs/energy/?by={by}&start=2026-10-01&end=2026-10-01"


def allocate(item: CostLineItem, team: Team | None, cost: str) -> None:
    CostAllocation.objects.create(
        line_item=item,
        team=team,
        method="tag" if team else "unallocated",
        billed_cost=Decimal(cost),
        effective_cost=Decimal(cost),
        billing_currency=item.billing_currency,
        charge_period_start=item.charge_period_start,
        charge_period_end=item.charge_period_end,
        provider=item.provider,
        service_name=item.service_name,
    )


@pytest.fixture
def fleet_energy(agent: Any, tmp_path: Path) -> dict[str, Any]:
    ml = Team.objects.create(slug="ml", name="ML")
    # LLM, estimated: 1,000 output tokens = 0.6 x 1.2 = 0.72 Wh (0.34632 g at 481 g/kWh);
    # 1,000 input = 0.22 x 1.2 = 0.264 Wh (0.126984 g). Both of action a1.
    a = call(ts=NOON, action_id="a1", output_tokens=1000)
    b = call(ts=NOON, action_id="a1", input_tokens=1000)
    measured = call("llama-3.1-70b", ts=NOON, provider="vllm", output_tokens=10)
    ingest(a, b, measured)
    # As the measured-power task writes it (tests/costs/test_measured_energy.py).
    LlmUsage.objects.filter(event_id=measured["id"]).update(
        energy_wh=Decimal("2.5"), gco2e=Decimal("1.2025"), energy_source=EnergySource.MEASURED
    )
    cloud_energy_config.cache_clear()
    gpu = row("Google Cloud", "Compute Engine", "nvidia-tesla-t4", "5", "hour", "us-central1")
    path = write_csv(
        tmp_path / "bill.csv",
        HEADER + ROWS["fargate"] + ROWS["opaque"] + ROWS["egress"] + gpu.replace("1.00", "0"),
    )
    assert run_import(path, "focus").status == "done"
    # With no rules the import leaves each line unallocated; these tests allocate by hand.
    CostAllocation.objects.all().delete()
    items = {i.sku_id: i for i in CostLineItem.objects.all()}
    # Fargate, 24.062 Wh / 9.121158 g, cost 1.00: three quarters to platform, a quarter to ml
    allocate(items["USE1-Fargate-vCPU"], agent.team, "0.75")
    allocate(items["USE1-Fargate-vCPU"], ml, "0.25")
    # The T4, 217.25 Wh / 98.6315 g, costs nothing: split evenly
    allocate(items["nvidia-tesla-t4"], agent.team, "0")
    allocate(items["nvidia-tesla-t4"], ml, "0")
    # Egress (59.25 Wh / 19.4577 g) has no allocation rows: unallocated
    return {"ml": ml}


class _Table(HTMLParser):
    """The text of each body and footer row's cells of the element with `wanted` id."""

    def __init__(self, wanted: str) -> None:
        super().__init__()
        self.wanted, self.depth, self.found = wanted, 0, False
        self.in_head, self.rows, self.cell = False, [], None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if dict(attrs).get("id") == self.wanted:
            self.found, self.depth = True, 0
        if not self.found:
            return
        self.depth += 1
        if tag == "thead":
            self.in_head = True
        elif tag == "tr" and not self.in_head:
            self.rows.append([])
        elif tag in ("td", "th") and not self.in_head:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if not self.found:
            return
        self.depth -= 1
        if tag == "thead":
            self.in_head = False
        elif tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(re.sub(r"\s+", " ", "".join(self.cell)).strip())
            self.cell = None
        if self.depth == 0:
            self.found = False

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def cells(html: str, table: str) -> list[list[str]]:
    parser = _Table(table)
    parser.feed(html)
    return parser.rows


def text_of(html: str, element: str) -> str:
    match = re.search(rf'id="{element}"[^>]*>(.*?)</div>', html, re.S)
    assert match, element
    return re.sub(r"\s+", " ", match.group(1)).strip()


def test_by_team_splits_measured_llm_and_cloud_energy(client, make_person, fleet_energy):
    client.force_login(make_person("fiona", "finops"))
    response = client.get(URL.format(by="team"))
    assert response.status_code == 200
    html = response.content.decode()
    # platform: measured 2.5; LLM estimated 0.984; cloud 24.062 x 0.75 + 217.25 / 2 = 126.6715
    #   gCO2e measured 1.2025; estimated 0.473304 + 6.8408685 + 49.31575 = 56.6299225
    # ml: cloud 24.062 x 0.25 + 108.625 = 114.6405; gCO2e 2.2802895 + 49.31575 = 51.5960395
    assert cells(html, "energy-table") == [
        [
            "platform",
            "3",
            "2.500",
            "0.984",
            "126.672",
            "130.156",
            "1.203",
            "56.630",
            "1",
            "0.000",
            "0.984",
        ],
        ["ml", "0", "0.000", "0.000", "114.641", "114.641", "0.000", "51.596", "0", "—", "—"],
        [
            "(unallocated)",
            "0",
            "0.000",
            "0.000",
            "59.250",
            "59.250",
            "0.000",
            "19.458",
            "0",
            "—",
            "—",
        ],
        [
            "Total",
            "3",
            "2.500",
            "0.984",
            "300.562",
            "304.046",
            "1.203",
            "127.684",
            "1",
            "0.000",
            "0.984",
        ],
    ]
    assert cells(html, "missing-table") == [
        [
            "AWS",
            "Amazon EC2",
            "Hrs",
            "instance time whose SKU id names no instance type, so the vCPU count is unknown: "
            'map the SKU in COSTS_CLOUD_ENERGY["skus"]',
            "1",
            "1.00 USD",
        ]
    ]
    assert cells(html, "action-table") == [["a1", "triage-bot", "2", "0.000", "0.984"]]
    assert 'id="energy-chart-data"' in html


def test_by_model_and_by_service(client, make_person, fleet_energy):
    client.force_login(make_person("sam", "sre_lead"))
    by_model = cells(client.get(URL.format(by="model")).content.decode(), "energy-table")
    assert [r[0] for r in by_model] == [
        "(cloud, no model)",
        "llama-3.1-70b",
        "test-sonnet-20261101",
        "Total",
    ]
    assert [r[5] for r in by_model] == ["300.562", "2.500", "0.984", "304.046"]
    by_service = cells(client.get(URL.format(by="service")).content.decode(), "energy-table")
    assert [(r[0], r[5]) for r in by_service] == [
        ("Compute Engine", "217.250"),
        ("Bandwidth", "59.250"),
        ("AWS Fargate", "24.062"),
        ("LLM: vllm", "2.500"),
        ("LLM: anthropic", "0.984"),
        ("Total", "304.046"),
    ]


def test_csv_export_has_six_decimal_places(client, make_person, fleet_energy):
    client.force_login(make_person("fiona", "finops"))
    response = client.get(URL.format(by="team") + "&format=csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="energy-by-team-2026-10-01-to-2026-10-01.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "team",
        "llm_calls",
        "measured_wh",
        "estimated_wh_llm",
        "estimated_wh_cloud",
        "total_wh",
        "measured_gco2e",
        "estimated_gco2e",
        "actions",
        "measured_wh_per_action",
        "estimated_wh_per_action",
    ]
    assert rows[1] == [
        "platform",
        "3",
        "2.500000",
        "0.984000",
        "126.671500",
        "130.155500",
        "1.202500",
        "56.629923",
        "1",
        "0.000000",
        "0.984000",
    ]
    assert rows[3] == [
        "(unallocated)",
        "0",
        "0.000000",
        "0.000000",
        "59.250000",
        "59.250000",
        "0.000000",
        "19.457700",
        "0",
        "",
        "",
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "by=colour",
            "Group by: Select a valid choice. colour is not one of the available choices.",
        ),
        ("start=yesterday", "From: Enter the first day as YYYY-MM-DD."),
        ("start=2026-10-02&end=2026-10-01", "The first day is after the last day: swap them."),
        ("start=2024-01-01&end=2026-10-01", "The range is 1005 days; choose at most 366."),
    ],
)
def test_bad_filters_are_a_400_saying_what_to_fix(client, make_person, query, message):
    client.force_login(make_person("fiona", "finops"))
    response = client.get(f"/costs/energy/?{query}")
    assert response.status_code == 400
    assert text_of(response.content.decode(), "energy-errors") == message


def test_finops_and_sre_leads_see_it_in_the_nav_and_approvers_do_not(client, make_person):
    approver = make_person("ada", "approver")
    client.force_login(approver)
    assert client.get("/costs/energy/").status_code == 403
    assert 'href="/costs/energy/"' not in client.get("/").content.decode()
    client.force_login(make_person("sam", "sre_lead"))
    assert 'href="/costs/energy/"' in client.get("/").content.decode()


def test_the_page_costs_a_fixed_number_of_queries(
    client, make_person, fleet_energy, django_assert_num_queries
):
    client.force_login(make_person("fiona", "finops"))
    client.get(URL.format(by="agent"))
    # session, user, roles; 2 LLM, 1 cloud, 1 missing, 1 top actions, 2 agent labels; 5 nav
    with django_assert_num_queries(15):
        assert client.get(URL.format(by="agent")).status_code == 200
