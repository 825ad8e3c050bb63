"""Estimated energy and emissions of llm_calls, and the cost and energy of an action, worked
out by hand: default coefficients 0.22 Wh per 1k input and 0.6 Wh per 1k output tokens,
PUE 1.2, world grid 481 gCO2e/kWh, France 56."""

from collections.abc import Iterator
from decimal import Decimal

import pytest

from apps.costs.energy import energy_config, energy_config_check
from apps.costs.models import LlmUsage
from apps.slo.costs import ActionCost, action_costs
from tests.costs.conftest import T0, call, ingest, make_price

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_energy_config() -> Iterator[None]:
    energy_config.cache_clear()
    yield
    energy_config.cache_clear()


def test_energy_counts_every_input_token_and_the_pue(agent):
    # input 1,000 + writes 3,000 + reads 4,000 = 8,000 input tokens; 2,000 output tokens:
    # (8 x 0.22 + 2 x 0.6) x 1.2 = (1.76 + 1.2) x 1.2 = 3.552 Wh
    # 3.552 Wh x 481 g/kWh / 1000 = 1.708512 gCO2e
    item = call(
        ts=T0,
        input_tokens=1000,
        output_tokens=2000,
        cache_creation_input_tokens=3000,
        cache_read_input_tokens=4000,
    )
    ingest(item)
    row = LlmUsage.objects.get(event_id=item["id"])
    assert (row.energy_wh, row.gco2e, row.grid_region) == (
        Decimal("3.552"),
        Decimal("1.708512"),
        "world",
    )
    assert row.energy_source == "estimated"


def test_a_short_prompt_lands_on_googles_median(agent):
    # 100 input, 300 output: (0.1 x 0.22 + 0.3 x 0.6) x 1.2 = 0.202 x 1.2 = 0.2424 Wh (Google: 0.24)
    item = call(ts=T0, input_tokens=100, output_tokens=300)
    ingest(item)
    assert LlmUsage.objects.get(event_id=item["id"]).energy_wh == Decimal("0.2424")


def test_the_calls_region_sets_the_grid_and_an_unknown_one_falls_back(agent):
    fr = call(ts=T0, output_tokens=1000, region="FR")  # 0.6 x 1.2 = 0.72 Wh; x 56 / 1000
    mars = call(ts=T0, output_tokens=1000, region="mars")
    ingest(fr, mars)
    rows = {str(u.event_id): u for u in LlmUsage.objects.all()}
    assert (rows[fr["id"]].gco2e, rows[fr["id"]].grid_region) == (Decimal("0.04032"), "fr")
    # 0.72 x 481 / 1000 = 0.34632
    assert (rows[mars["id"]].gco2e, rows[mars["id"]].grid_region) == (
        Decimal("0.34632"),
        "world",
    )


def test_deployment_overrides_pue_grid_and_per_model_coefficients(agent, settings):
    settings.COSTS_PUE = "1.1"
    settings.COSTS_GRID_REGION = "dc-west"
    settings.COSTS_GRID_INTENSITY = {"dc-west": "100"}
    settings.COSTS_ENERGY_COEFFICIENTS = [
        {"model": "tiny-*", "input_wh_per_1k": "0.01", "output_wh_per_1k": "0.05"}
    ]
    tiny = call("tiny-1", ts=T0, input_tokens=1000, output_tokens=1000)
    other = call("big-1", ts=T0, input_tokens=1000, output_tokens=1000)
    ingest(tiny, other)
    rows = {str(u.event_id): u for u in LlmUsage.objects.all()}
    # (0.01 + 0.05) x 1.1 = 0.066 Wh; x 100 / 1000 = 0.0066 g
    assert (rows[tiny["id"]].energy_wh, rows[tiny["id"]].gco2e) == (
        Decimal("0.066"),
        Decimal("0.0066"),
    )
    # default coefficients: (0.22 + 0.6) x 1.1 = 0.902 Wh; x 100 / 1000 = 0.0902 g
    assert (rows[other["id"]].energy_wh, rows[other["id"]].gco2e) == (
        Decimal("0.902"),
        Decimal("0.0902"),
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pue": "0.9"}, "COSTS_PUE is total facility energy over IT energy: 1 or more."),
        ({"pue": "fast"}, "COSTS_PUE must be a number, not 'fast'."),
        ({"region": "atlantis"}, "COSTS_GRID_REGION 'atlantis' has no grid intensity"),
        ({"grid": {"x": "-5"}}, "COSTS_GRID_INTENSITY['x'] must be a non-negative number"),
        ({"coefficients": [{"input_wh_per_1k": 1}]}, "COSTS_ENERGY_COEFFICIENTS items need"),
    ],
)
def test_a_bad_energy_setting_fails_with_its_name(kwargs, message):
    args = {"pue": "1.2", "region": "world", "grid": {}, "coefficients": []} | kwargs
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        energy_config_check(**args)


def test_action_costs_sum_the_llm_calls_of_each_action(agent):
    make_price()
    ingest(
        # a1: 1,000 x 3 + 500 x 15 = 10,500 per million; 2,000 x 3 = 6,000 per million
        call(ts=T0, action_id="a1", input_tokens=1000, output_tokens=500),
        call(ts=T0, action_id="a1", input_tokens=2000),
        # a2: one priced call and one the table cannot price: its cost is unknown
        call(ts=T0, action_id="a2", input_tokens=1000),
        call("mystery-1", ts=T0, action_id="a2", output_tokens=1000),
        # a3: the agent reported the cost
        call(ts=T0, action_id="a3", output_tokens=1000, cost_usd="0.5"),
        call(ts=T0, input_tokens=1),  # no action
    )
    costs = action_costs(["a1", "a2", "a3", "a4"])
    # a1 energy: (1 x 0.22 + 0.5 x 0.6) x 1.2 = 0.624; (2 x 0.22) x 1.2 = 0.528; sum 1.152 Wh
    # a2 energy: 0.22 x 1.2 = 0.264; 0.6 x 1.2 = 0.72; sum 0.984 Wh
    assert costs == {
        "a1": ActionCost(cost_usd=Decimal("0.016500000"), energy_wh=Decimal("1.152")),
        "a2": ActionCost(cost_usd=None, energy_wh=Decimal("0.984")),
        "a3": ActionCost(cost_usd=Decimal("0.5"), energy_wh=Decimal("0.72")),
    }
    assert action_costs([]) == {}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COSTS_PUE": "0.8"}, "COSTS_PUE is total facility energy over IT energy: 1 or more."),
        ({"COSTS_GRID_REGION": "atlantis"}, "COSTS_GRID_REGION 'atlantis' has no grid intensity"),
        ({"COSTS_GRID_INTENSITY": "not json"}, ""),
        (
            {"COSTS_CLOUD_ENERGY": '{"utilization": "0.5"}'},
            "COSTS_CLOUD_ENERGY has unknown keys utilization",
        ),
        (
            {"COSTS_MEASURED_POWER": '[{"provider": "vllm", "model": "x", "selector": "up"}]'},
            "COSTS_MEASURED_POWER[0] selector must select DCGM_FI_DEV_POWER_USAGE",
        ),
        ({"COSTS_MEASURED_STEP_SECONDS": "7"}, "COSTS_MEASURED_STEP_SECONDS must be 1 to 300"),
    ],
)
def test_a_bad_energy_setting_stops_the_boot(env, message):
    from tests.test_settings import _django_setup

    result = _django_setup(DEBUG="1", **env)
    assert result.returncode != 0
    assert message in result.stderr
