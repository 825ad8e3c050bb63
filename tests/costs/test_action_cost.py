"""What one action cost: its own calls plus its share of the day's untied costs."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from apps.actions.models import Action
from apps.audit.services.derived import derived_catch_up
from apps.costs.actions import action_cost_breakdown
from apps.costs.models import CloudEnergy, CloudEnergyBasis, CostDriverRate
from tests.conftest import event
from tests.costs.conftest import call, ingest, make_price
from tests.costs.test_explorer import NOV, cloud_line, tool_call

pytestmark = pytest.mark.django_db


def proposal(action_id: str, *, agent: str = "triage-bot", minutes: int = 0) -> dict[str, Any]:
    return event(
        agent,
        "proposal",
        {
            "action_type": "k8s.restart_deployment",
            "target": "k8s://prod/payments/api",
            "risk": "medium",
            "confidence": 0.9,
            "rationale": "api pods crash looping",
        },
        ts=NOV.replace(minute=minutes),
        action_id=action_id,
    )


def test_an_action_costs_its_own_calls_and_a_share_of_the_days_untied_costs(
    agent, other_agent, client, make_person
):
    make_price()  # test-sonnet: 3 USD in, 15 USD out per million tokens
    CostDriverRate.objects.create(
        kind="tool_call", tool="*", usd_rate=Decimal("0.01"), effective_from=date(2026, 11, 1)
    )
    ingest(
        proposal("act-1"),
        proposal("act-2", minutes=5),
        proposal("act-3", agent="k8s-healer", minutes=7),
        call(ts=NOV, action_id="act-1", input_tokens=100_000),  # 0.30
        tool_call("loki_query", ts=NOV, action_id="act-1"),  # 0.01
        tool_call("paid_api", ts=NOV, action_id="act-1", cost_usd="0.25"),
        call(ts=NOV, input_tokens=200_000),  # 0.60 tied to no action
        tool_call("kubectl_get", ts=NOV),  # 0.01 tied to no action
        call(ts=NOV.replace(day=3), input_tokens=1_000_000),  # another day
    )
    derived_catch_up()
    line = cloud_line(
        day=NOV,
        effective="9.00",
        billed="9.00",
        shares=[
            (agent.team, agent, "4.00", "4.00"),
            (agent.team, None, "3.00", "3.00"),
            (None, None, "2.00", "2.00"),
        ],
    )
    basis = CloudEnergyBasis.objects.create(
        provider="AWS",
        service_name=line.service_name,
        charge_category="Usage",
        kind="compute",
        wh_per_unit=Decimal("1"),
        grid_region="eu-west-1",
        gco2e_per_kwh=Decimal("300"),
        method="test",
    )
    CloudEnergy.objects.create(
        line_item=line, basis=basis, energy_wh=Decimal("90"), gco2e=Decimal("27")
    )
    cost = action_cost_breakdown(Action.objects.get(action_id="act-1"))
    lines = {line.label: line.cost_usd for line in cost.lines}
    assert lines == {
        "1 LLM call": Decimal("0.300000000"),
        "2 tool calls": Decimal("0.26"),
        "1/2 of triage-bot's 1 LLM calls tied to no action": Decimal("0.30"),
        "1/2 of triage-bot's 1 tool calls tied to no action": Decimal("0.005"),
        "1/2 of triage-bot's cloud cost": Decimal("2.00"),
        "1/3 of team platform's cloud cost given to no agent": Decimal("1.00"),
    }
    assert (cost.agent_actions, cost.team_actions) == (2, 3)
    # 90 Wh of cloud: 4/9 of it to the agent (40 Wh, half each), 3/9 to its team (30 Wh, a third).
    cloud_wh = {line.label: line.energy_wh for line in cost.shared if "cloud" in line.label}
    assert cloud_wh == {
        "1/2 of triage-bot's cloud cost": Decimal("20"),
        "1/3 of team platform's cloud cost given to no agent": Decimal("10"),
    }
    assert cost.total_usd == Decimal("3.865")
    assert not cost.incomplete

    client.force_login(make_person("vic", "viewer"))
    assert 'hx-get="/actions/act-1/cost/"' in client.get("/actions/act-1/").content.decode()
    page = client.get("/actions/act-1/cost/").content.decode()
    assert "USD 3.8650" in page
    assert "1/3 of team platform&#x27;s cloud cost given to no agent" in page


def test_an_unpriced_tool_makes_the_total_a_lower_bound(agent):
    ingest(proposal("act-9"), tool_call("mystery_tool", ts=NOV, action_id="act-9"))
    cost = action_cost_breakdown(Action.objects.get(action_id="act-9"))
    assert [(line.label, line.cost_usd) for line in cost.lines] == [("1 tool call", None)]
    assert cost.incomplete


def test_the_action_page_says_how_much_of_its_energy_was_measured(agent, client, make_person):
    from apps.costs.models import LlmUsage

    first, second = (
        call(ts=NOV, action_id="act-m", output_tokens=1000),
        call(ts=NOV, action_id="act-m", output_tokens=1000),
    )
    ingest(proposal("act-m"), first, second)
    derived_catch_up()
    client.force_login(make_person("vic", "viewer"))
    # 2 x 1,000 output tokens = 2 x 0.72 Wh, estimated
    assert "1.44 Wh est." in client.get("/actions/act-m/cost/").content.decode()
    # as the measured-power task writes it (tests/costs/test_measured_energy.py)
    LlmUsage.objects.filter(event_id=first["id"]).update(
        energy_wh=Decimal("2.5"), energy_source="measured"
    )
    assert "3.22 Wh, 2.5 Wh of it measured" in client.get("/actions/act-m/cost/").content.decode()
    LlmUsage.objects.filter(event_id=second["id"]).update(
        energy_wh=Decimal("1"), energy_source="measured"
    )
    assert "3.50 Wh measured" in client.get("/actions/act-m/cost/").content.decode()
