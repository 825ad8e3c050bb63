"""The cost explorer and the cost drivers: figures worked out by hand."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from apps.audit.models import EventDailyCount
from apps.audit.services.derived import derived_catch_up
from apps.billing.models import BillingImport, CostAllocation, CostLineItem
from apps.costs.drivers import driver_rates
from apps.costs.explorer import ExplorerQuery, cost_explorer
from apps.costs.models import CostDriverRate, ToolCallDailyCount
from apps.fleet.models import Agent, Team
from tests.conftest import event
from tests.costs.conftest import call, ingest, make_price

pytestmark = pytest.mark.django_db

NOV = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def rate(kind: str, tool: str, usd: str, day: date) -> CostDriverRate:
    return CostDriverRate.objects.create(
        kind=kind, tool=tool, usd_rate=Decimal(usd), effective_from=day
    )


def tool_call(
    tool: str, *, ts: datetime, agent: str = "triage-bot", action_id: str = "", **data: Any
) -> dict[str, Any]:
    fields = {"action_id": action_id} if action_id else {}
    return event(agent, "tool_call", {"tool": tool, "status": "ok", **data}, ts=ts, **fields)


def test_tool_calls_are_counted_per_agent_day_and_tool_once(agent):
    items = [
        tool_call("loki_query", ts=NOV),
        tool_call("loki_query", ts=NOV.replace(hour=23, minute=59)),
        tool_call("kubectl_get", ts=NOV),
        tool_call("loki_query", ts=NOV.replace(day=3, hour=0)),
        tool_call("paid_api", ts=NOV, cost_usd="0.25"),
        tool_call("paid_api", ts=NOV, cost_usd=0.5),
        tool_call("paid_api", ts=NOV),
        event("triage-bot", "note", ts=NOV),
    ]
    ingest(*items)
    derived_catch_up()
    expected = {
        (date(2026, 11, 2), "loki_query"): 2,
        (date(2026, 11, 2), "kubectl_get"): 1,
        (date(2026, 11, 2), "paid_api"): 3,
        (date(2026, 11, 3), "loki_query"): 1,
    }
    counted = {(c.day, c.tool): c.calls for c in ToolCallDailyCount.objects.all()}
    assert counted == expected
    paid = ToolCallDailyCount.objects.get(tool="paid_api")
    assert (paid.reported_calls, paid.reported_usd) == (2, Decimal("0.75"))
    # A retried batch is all duplicates, and a second catch-up has nothing new to count.
    ingest(*items)
    derived_catch_up()
    ingest(tool_call("loki_query", ts=NOV))
    derived_catch_up()
    counted = {(c.day, c.tool): c.calls for c in ToolCallDailyCount.objects.all()}
    assert counted == {**expected, (date(2026, 11, 2), "loki_query"): 3}


def test_the_most_specific_tool_rate_in_force_that_day_applies(db):
    nov1, nov3 = date(2026, 11, 1), date(2026, 11, 3)
    rate("tool_call", "*", "0.001", nov1)
    rate("tool_call", "loki_*", "0.002", nov1)
    rate("tool_call", "loki_query", "0.005", nov3)
    rate("tool_call", "*", "0.0015", nov3)
    rates = driver_rates()
    assert rates.tool_call_rate("loki_query", date(2026, 11, 2)) == Decimal("0.002")
    assert rates.tool_call_rate("loki_query", nov3) == Decimal("0.005")
    assert rates.tool_call_rate("loki_tail", nov3) == Decimal("0.002")
    assert rates.tool_call_rate("kubectl_get", date(2026, 11, 2)) == Decimal("0.001")
    assert rates.tool_call_rate("kubectl_get", nov3) == Decimal("0.0015")
    assert rates.tool_call_rate("kubectl_get", date(2026, 10, 31)) is None


def test_log_storage_accrues_per_day_on_everything_stored_so_far(agent):
    gib = 2**30
    EventDailyCount.objects.create(agent=agent, day=date(2026, 11, 1), type="note", bytes=gib)
    EventDailyCount.objects.create(
        agent=agent, day=date(2026, 11, 3), type="llm_call", bytes=gib // 2
    )
    rate("log_storage", "", "0.03", date(2026, 1, 1))
    rate("log_storage", "", "0.031", date(2026, 12, 1))
    result = cost_explorer(
        ExplorerQuery(start=date(2026, 11, 2), end=date(2026, 12, 1), dimension="driver")
    )
    (logging,) = result.rows
    # 1 GiB x 0.03 / 30 days on Nov 2; 1.5 GiB from Nov 3; December has 31 days.
    assert logging.per_day[date(2026, 11, 2)] == Decimal("0.001")
    assert logging.per_day[date(2026, 11, 3)] == Decimal("0.0015")
    assert logging.per_day[date(2026, 11, 30)] == Decimal("0.0015")
    assert logging.per_day[date(2026, 12, 1)] == Decimal("0.0015")
    assert logging.total == Decimal("0.001") + 28 * Decimal("0.0015") + Decimal("0.0015")
    assert result.gaps.log_storage_unrated_days == 0


def cloud_line(
    *,
    day: datetime,
    effective: str,
    billed: str,
    shares: list[tuple[Team | None, Agent | None, str, str]],
    currency: str = "USD",
    service: str = "Amazon Elastic Kubernetes Service",
) -> CostLineItem:
    """A line item and its allocation rows: (team, agent, effective share, billed share)."""
    billing_import = BillingImport.objects.create(file_name="focus.csv", format="focus")
    item = CostLineItem.objects.create(
        billing_import=billing_import,
        provider="AWS",
        billing_account_id="123456789012",
        billing_period_start=day.replace(day=1, hour=0),
        billing_period_end=day.replace(month=day.month + 1, day=1, hour=0),
        charge_period_start=day.replace(hour=0),
        charge_period_end=day.replace(day=day.day + 1, hour=0),
        charge_category="Usage",
        billed_cost=Decimal(billed),
        effective_cost=Decimal(effective),
        billing_currency=currency,
        service_name=service,
    )
    for team, agent, share, billed_share in shares:
        CostAllocation.objects.create(
            line_item=item,
            team=team,
            agent=agent,
            method="tag" if team else "unallocated",
            billed_cost=Decimal(billed_share),
            effective_cost=Decimal(share),
            billing_currency=currency,
            charge_period_start=item.charge_period_start,
            charge_period_end=item.charge_period_end,
            provider=item.provider,
            service_name=item.service_name,
        )
    return item


@pytest.fixture
def month(agent: Agent) -> dict[str, Any]:
    """Two teams' costs from Nov 2 to Nov 4 in every driver but logging."""
    payments = Team.objects.create(slug="payments", name="Payments")
    Agent.objects.create(slug="pay-bot", team=payments)
    make_price()
    ingest(
        call(ts=NOV, input_tokens=1_000_000),  # 3.00
        call(ts=NOV.replace(day=3), agent="pay-bot", output_tokens=100_000),  # 1.50
        call("mystery-model", ts=NOV, input_tokens=10),  # unpriced
        call(ts=NOV.replace(day=5), input_tokens=1_000_000),  # after the range
        *[tool_call("loki_query", ts=NOV) for _ in range(3)],
        tool_call("kubectl_get", ts=NOV),  # no rate
        tool_call("paid_api", ts=NOV.replace(day=4), cost_usd="0.40"),  # reported, no rate
    )
    derived_catch_up()
    rate("tool_call", "loki_query", "0.5", date(2026, 11, 1))
    cloud_line(
        day=NOV,
        effective="10.00",
        billed="12.00",
        shares=[(agent.team, agent, "6.00", "7.20"), (None, None, "4.00", "4.80")],
    )
    cloud_line(
        day=NOV,
        effective="5.00",
        billed="5.00",
        currency="EUR",
        shares=[(payments, None, "5.00", "5.00")],
    )
    return {"payments": payments}


def explore(client: Any, headers: dict[str, str] | None = None, **params: str) -> Any:
    query = {"start": "2026-11-02", "end": "2026-11-04", **params}
    return client.get("/costs/explorer/", query, headers=headers)


def test_costs_by_team_add_every_driver(client, month, make_person):
    client.force_login(make_person("fiona", "finops"))
    response = explore(client, dimension="team")
    assert response.status_code == 200
    result = response.context["result"]
    totals = {row.value: row.total for row in result.rows}
    assert totals == {
        "platform": Decimal("10.90"),
        "(unallocated)": Decimal("4.00"),
        "payments": Decimal("1.50"),
    }
    assert result.total == Decimal("16.40")
    assert result.per_driver == {
        "inference": Decimal("4.50"),
        "cloud": Decimal("10.00"),
        "logging": Decimal(0),
        "tool calls": Decimal("1.90"),
    }
    page = response.content.decode()
    assert '<div class="value" id="total-cost">16.40</div>' in page
    assert 'data-value="(unallocated)"' in page
    # What the figures leave out is named, not counted as zero.
    assert "1 LLM calls of models with no price" in page
    assert "calls of tool <code>kubectl_get</code> with no rate" in page
    assert "Audit-log storage on 3 days: no storage rate in force" in page
    assert "5.00 EUR of cloud cost in another currency" in page


def test_billed_cloud_cost_and_a_team_filter(client, month, make_person):
    client.force_login(make_person("fiona", "finops"))
    assert explore(client, cloud_cost="billed").context["result"].total == Decimal("18.40")
    only_payments = explore(client, team="payments", dimension="driver").context["result"]
    assert {r.value: r.total for r in only_payments.rows} == {"inference": Decimal("1.50")}
    assert only_payments.gaps.other_currencies == {"EUR": Decimal("5.00")}
    in_euros = explore(client, team="payments", currency="EUR").context["result"]
    assert in_euros.total == Decimal("5.00")


def test_the_csv_has_the_charts_numbers(client, month, make_person):
    client.force_login(make_person("fiona", "finops"))
    response = explore(client, dimension="driver", format="csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "opsdash-costs-by-driver-2026-11-02-2026-11-04.csv" in response["Content-Disposition"]
    lines = response.content.decode().splitlines()
    assert lines == [
        "day,driver,currency,cost",
        "2026-11-02,cloud,USD,10.000000",
        "2026-11-02,inference,USD,3.000000",
        "2026-11-03,inference,USD,1.500000",
        "2026-11-02,tool calls,USD,1.500000",
        "2026-11-04,tool calls,USD,0.400000",
        "total,,USD,16.400000",
    ]


def test_the_chart_stacks_one_series_per_value(client, month, make_person):
    client.force_login(make_person("fiona", "finops"))
    chart = explore(client, dimension="driver").context["chart"]
    series = {trace["name"]: trace["y"] for trace in chart["data"]}
    assert series == {
        "cloud": [10.0, 0.0, 0.0],
        "inference": [3.0, 1.5, 0.0],
        "tool calls": [1.5, 0.0, 0.4],
    }
    assert chart["data"][0]["x"] == ["2026-11-02", "2026-11-03", "2026-11-04"]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"start": "2026-11-05", "end": "2026-11-01"}, "The first day is after the last day."),
        ({"start": "02/11/2026"}, "Enter the first day as YYYY-MM-DD."),
        ({"start": "2025-01-01", "end": "2026-11-01"}, "Choose at most 366 days"),
        ({"currency": "usd"}, "A currency is three capital letters"),
        ({"dimension": "colour"}, "Select a valid choice."),
    ],
)
def test_a_bad_query_is_a_400_that_says_why(client, db, make_person, params, message):
    client.force_login(make_person("fiona", "finops"))
    response = client.get("/costs/explorer/", params)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_htmx_gets_the_result_alone_and_roles_are_checked(client, month, make_person):
    client.force_login(make_person("sam", "sre_lead"))
    partial = explore(client, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert b"<html" not in partial.content and b'id="explorer-table"' in partial.content
    client.force_login(make_person("ada", "approver"))
    assert explore(client).status_code == 403


def test_finops_adds_a_driver_rate_and_a_second_one_that_day_is_refused(client, db, make_person):
    client.force_login(make_person("fiona", "finops"))
    form = {
        "rate-kind": "tool_call",
        "rate-tool": "pagerduty.*",
        "rate-usd_rate": "0.0004",
        "rate-effective_from": "2026-11-01",
        "rate-note": "PagerDuty API overage",
    }
    response = client.post("/costs/driver-rates/", form)
    assert response.status_code == 302
    stored = CostDriverRate.objects.get()
    assert (stored.tool, stored.usd_rate) == ("pagerduty.*", Decimal("0.0004"))
    again = client.post("/costs/driver-rates/", {**form, "rate-usd_rate": "0.0005"})
    assert again.status_code == 400
    assert "exists already; rates are never edited" in again.content.decode()
    missing_tool = client.post("/costs/driver-rates/", {**form, "rate-tool": ""})
    assert "Name the tool (or * for every tool)" in missing_tool.content.decode()
    negative = client.post("/costs/driver-rates/", {**form, "rate-usd_rate": "-1"})
    assert "A rate cannot be negative." in negative.content.decode()
    assert CostDriverRate.objects.count() == 1
    client.force_login(make_person("vic", "viewer"))
    assert client.post("/costs/driver-rates/", form).status_code == 403


def test_a_name_that_looks_like_a_formula_is_quoted_in_the_csv(client, month, make_person):
    # Model names come from agents' events: a spreadsheet must show this one, never run it.
    make_price("=HYPERLINK*", effective_from=NOV - timedelta(days=30))
    ingest(call('=HYPERLINK("http://x")', ts=NOV, input_tokens=1_000_000))
    client.force_login(make_person("fiona", "finops"))
    lines = explore(client, dimension="model", format="csv").content.decode().splitlines()
    assert '2026-11-02,"\'=HYPERLINK(""http://x"")",USD,3.000000' in lines
