"""Estimated energy (Wh) and emissions (gCO2e) of an LLM call. Every figure here is an
estimate from published coefficients; none is measured.

    Wh    = (all input tokens / 1000 x input coefficient
             + output tokens / 1000 x output coefficient) x PUE
    gCO2e = Wh / 1000 x grid intensity of the region (gCO2e per kWh)

Sources, read on 2026-11-26:

- Epoch AI, "How much energy does ChatGPT use?" (Josh You, Feb 2025),
  https://epoch.ai/gradient-updates/how-much-energy-does-chatgpt-use : a typical GPT-4o query
  (a short prompt, ~500 output tokens) ≈ 0.3 Wh on H100 servers, a 10k-token input ≈ 2.5 Wh;
  the authors call the estimate pessimistic and expect other frontier chat models (Claude,
  Gemini) to be similar. Hence the default coefficients: output 0.3 Wh / 0.5k = 0.6 Wh per
  1k tokens; input (2.5 - 0.3) Wh / 10k = 0.22 Wh per 1k tokens. Server energy: PUE on top.
- Google, "Measuring the environmental impact of AI inference" (Aug 2025): the median Gemini
  Apps text prompt uses 0.24 Wh and emits 0.03 gCO2e, data-centre overhead included. Google
  publishes no token counts, so it cannot give per-token coefficients; it is the cross-check
  for a short prompt (100 input and 300 output tokens give 0.2 Wh x 1.2 = 0.24 Wh here).
- Jegham et al., "How Hungry is AI? Benchmarking Energy, Water, and Carbon Footprint of LLM
  Inference" (arXiv:2505.09598, 2025): 0.42 Wh for a short GPT-4o query (100 in / 300 out),
  infrastructure multipliers included; per-model figures for other models (Claude 3.7 Sonnet
  among them) are on the paper's dashboard, and can be set per model through
  COSTS_ENERGY_COEFFICIENTS. Anthropic publishes no per-model energy figure, so every Claude
  model takes the default until a deployment sets its own.
- PUE 1.2 (COSTS_PUE): between hyperscale cloud (Google reports ~1.1 fleet-wide) and the
  Uptime Institute 2024 survey's industry average of 1.56, nearer the clouds API inference
  runs in.
- Grid intensity: Ember, Yearly Electricity Data, lifecycle gCO2e/kWh for 2023 (via Our World
  in Data, https://ourworldindata.org/grapher/carbon-intensity-electricity, and Ember's 2023
  country figures on Statista). Region "world" is the default (COSTS_GRID_REGION).

Cached input is counted at the full input coefficient: no source gives the energy a cache hit
saves, so the estimate errs high, as Epoch's does. Self-hosted models with measured GPU power
(DCGM through Prometheus) have their estimates replaced by measured figures afterwards
(apps.costs.measured); cloud line items use apps.costs.cloud_energy, with the cloud regions'
intensities in DEFAULT_GRID_INTENSITY below.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from apps.costs.patterns import pattern_matches, specificity

if TYPE_CHECKING:
    from apps.costs.tokens import TokenUsage

WH_QUANTUM = Decimal("0.000001")
THOUSAND = Decimal(1000)


@dataclass(frozen=True)
class EnergyCoefficient:
    """Wh per 1,000 tokens for models matching `model` (exact, or a prefix ending in *)."""

    model: str
    input_wh_per_1k: Decimal
    output_wh_per_1k: Decimal
    source: str


DEFAULT_ENERGY_COEFFICIENTS: tuple[EnergyCoefficient, ...] = (
    EnergyCoefficient(
        model="*",
        input_wh_per_1k=Decimal("0.22"),
        output_wh_per_1k=Decimal("0.6"),
        source="Epoch AI 2025, GPT-4o on H100 (0.3 Wh per ~500 output tokens; "
        "2.5 Wh with a 10k-token input)",
    ),
)

DEFAULT_PUE = Decimal("1.2")

# gCO2e per kWh, Ember 2023 (lifecycle).
DEFAULT_GRID_INTENSITY: dict[str, Decimal] = {
    "world": Decimal("481"),
    "au": Decimal("549"),
    "br": Decimal("98"),
    "ca": Decimal("170"),
    "cn": Decimal("582"),
    "de": Decimal("381"),
    "fr": Decimal("56"),
    "ie": Decimal("291"),
    "in": Decimal("713"),
    "no": Decimal("30"),
    # Cloud regions (billing RegionId, lower case, spaces removed): Cloud Carbon Footprint's
    # methodology, Appendix V (read 2026-11-26), metric t/kWh x 10^6. AWS and Azure: EPA
    # eGRID2020 NERC regions in the US, EEA / carbonfootprint.com 2021 elsewhere; GCP: Google's
    # published region figures, without the carbon-free-energy adjustment.
    **{
        region: Decimal(value)
        for value, regions in {
            "379.069": ("us-east-1", "eastus", "eastus2"),
            "410.608": ("us-east-2", "northcentralus"),
            "322.167": ("us-west-1", "us-west-2", "westus", "westus2", "westus3"),
            "426.254": ("centralus",),
            "373.231": ("southcentralus",),
            "120": ("ca-central-1", "canadacentral"),
            "311": ("eu-central-1",),
            "278.6": ("eu-west-1", "northeurope"),
            "225": ("eu-west-2", "uksouth"),
            "51.1": ("eu-west-3",),
            "8.8": ("eu-north-1",),
            "213.4": ("eu-south-1",),
            "328.4": ("westeurope",),
            "51.28": ("francecentral",),
            "338.66": ("germanywestcentral",),
            "5.67": ("swedencentral",),
            "708.2": ("ap-south-1", "centralindia"),
            "465.8": ("ap-northeast-1", "japaneast"),
            "408": ("ap-southeast-1", "southeastasia"),
            "760": ("ap-southeast-2",),
            "790": ("australiaeast",),
            "61.7": ("sa-east-1",),
            "454": ("us-central1",),
            "480": ("us-east1",),
            "361": ("us-east4",),
            "78": ("us-west1",),
            "253": ("us-west2",),
            "212": ("europe-west1",),
            "231": ("europe-west2",),
            "293": ("europe-west3",),
            "410": ("europe-west4",),
            "133": ("europe-north1",),
            "554": ("asia-northeast1",),
            "493": ("asia-southeast1",),
            "721": ("asia-south1",),
        }.items()
        for region in regions
    },
}


class EnergyEstimate(NamedTuple):
    wh: Decimal
    gco2e: Decimal
    region: str


@dataclass(frozen=True)
class EnergyConfig:
    coefficients: tuple[EnergyCoefficient, ...]
    pue: Decimal
    grid: dict[str, Decimal]
    default_region: str

    def coefficient_for(self, model: str) -> EnergyCoefficient:
        best: EnergyCoefficient | None = None
        for c in self.coefficients:
            if pattern_matches(c.model, model) and (
                best is None or specificity(c.model) > specificity(best.model)
            ):
                best = c
        if best is None:  # a configuration without "*": the published default still applies
            return DEFAULT_ENERGY_COEFFICIENTS[0]
        return best

    def region_for(self, requested: str | None) -> str:
        region = (requested or "").strip().lower()
        return region if region in self.grid else self.default_region


def _decimal(value: object, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except ArithmeticError as exc:
        raise ValueError(f"{what} must be a number, not {value!r}.") from exc
    if not number.is_finite() or number < 0:
        raise ValueError(f"{what} must be a non-negative number, not {value!r}.")
    return number


def energy_config_check(
    *, pue: object, region: str, grid: dict[str, Any], coefficients: list[dict[str, Any]]
) -> EnergyConfig:
    """The defaults with a deployment's overrides; ValueError names the bad value (settings
    call it at start, so a typo fails the boot, not the first ingest)."""
    merged = []
    for item in coefficients:
        if not isinstance(item, dict) or "model" not in item:
            raise ValueError(
                "COSTS_ENERGY_COEFFICIENTS items need model, input_wh_per_1k and output_wh_per_1k."
            )
        merged.append(
            EnergyCoefficient(
                model=str(item["model"]),
                input_wh_per_1k=_decimal(item.get("input_wh_per_1k"), "input_wh_per_1k"),
                output_wh_per_1k=_decimal(item.get("output_wh_per_1k"), "output_wh_per_1k"),
                source=str(item.get("source", "set by this deployment")),
            )
        )
    table = dict(DEFAULT_GRID_INTENSITY)
    for name, value in grid.items():
        table[str(name).lower()] = _decimal(value, f"COSTS_GRID_INTENSITY[{name!r}]")
    default_region = region.strip().lower()
    if default_region not in table:
        raise ValueError(
            f"COSTS_GRID_REGION {region!r} has no grid intensity: choose one of "
            f"{', '.join(sorted(table))} or add it to COSTS_GRID_INTENSITY."
        )
    factor = _decimal(pue, "COSTS_PUE")
    if factor < 1:
        raise ValueError("COSTS_PUE is total facility energy over IT energy: 1 or more.")
    return EnergyConfig(tuple(merged) + DEFAULT_ENERGY_COEFFICIENTS, factor, table, default_region)


@lru_cache(maxsize=1)
def energy_config() -> EnergyConfig:
    """The configuration from settings, read once per process."""
    from django.conf import settings

    return energy_config_check(
        pue=settings.COSTS_PUE,
        region=settings.COSTS_GRID_REGION,
        grid=settings.COSTS_GRID_INTENSITY,
        coefficients=settings.COSTS_ENERGY_COEFFICIENTS,
    )


def llm_energy_estimate(
    usage: "TokenUsage", model: str, region: str | None, config: EnergyConfig
) -> EnergyEstimate:
    c = config.coefficient_for(model)
    it_wh = (usage.all_input * c.input_wh_per_1k + usage.output * c.output_wh_per_1k) / THOUSAND
    wh = (it_wh * config.pue).quantize(WH_QUANTUM, rounding=ROUND_HALF_EVEN)
    where = config.region_for(region)
    gco2e = (wh * config.grid[where] / THOUSAND).quantize(WH_QUANTUM, rounding=ROUND_HALF_EVEN)
    return EnergyEstimate(wh=wh, gco2e=gco2e, region=where)
