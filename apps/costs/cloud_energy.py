"""Estimated energy (Wh) and emissions (gCO2e) of cloud billing line items, the Cloud Carbon
Footprint (CCF) way: classify each line's usage, then

    compute  Wh = vCPU-hours x (min W + utilisation x (max W - min W)) x PUE
    GPU      Wh = GPU-hours  x (idle W + utilisation x (max W - idle W)) x PUE
    memory   Wh = GB-hours x W per GB x PUE
    storage  Wh = TB-hours x Wh per TB-hour (SSD or HDD) x PUE
    network  Wh = GB x Wh per GB x PUE
    gCO2e       = Wh / 1000 x grid intensity of the line's region (gCO2e per kWh)

Every figure is an estimate. Sources, read on 2026-11-26:

- CCF Methodology, https://www.cloudcarbonfootprint.org/docs/methodology (repository
  cloud-carbon-footprint/cloud-carbon-footprint, microsite/docs/Methodology.md, commit
  1559c18), "Appendix I: Energy Coefficients": AWS min/max 0.74/3.5 W per vCPU, GCP (median)
  0.71/4.26, Azure 0.78/3.76; average utilisation 50 % (2016 U.S. Data Center Energy Usage
  Report); HDD 0.65 and SSD 1.2 Wh per TB-hour; networking 0.001 kWh per GB; memory
  0.000392 kWh per GB-hour; PUE AWS 1.135, GCP 1.1, Azure 1.185 (the methodology's text and
  Microsoft's statement; its Appendix I says 1.125, the newest-design figure, and we take the
  fleet-wide one). "Appendix III": GPU idle / 100 % watts (Teads, from TechPowerUp).
- Grid intensities of cloud regions: the methodology's "Appendix V" (AWS and Azure: EPA eGRID2020
  NERC regions in the US, EEA and carbonfootprint.com 2021 elsewhere; GCP: Google's published
  region figures without the carbon-free-energy adjustment). They sit in
  apps.costs.energy.DEFAULT_GRID_INTENSITY, one table with the LLM regions.

What we do differently from CCF, and why:
- A line whose provider is not AWS, Google Cloud or Azure (a generic FOCUS row) uses the middle
  of the three providers' min and max watts (0.74 / 3.76) and COSTS_PUE: CCF publishes none.
- CCF's replication factors (e.g. x3 for object storage) and embodied emissions are left out:
  they need per-service tables a billing row cannot choose between; the estimate errs low there.
- The billing importer keeps provider, service, SKU id and unit, not AWS usage types, GCP SKU
  descriptions or Azure meter names, so an instance-hour line whose SKU id does not spell the
  instance type (t3.large, n2-standard-4, Standard_D2s_v5) has no vCPU count: it is left
  "no energy estimate" until COSTS_CLOUD_ENERGY["skus"] maps its SKU id. Never a silent zero.

Overrides (COSTS_CLOUD_ENERGY, JSON): {"utilisation": "0.5", "providers": {"aws": {"min_watts":
"0.74", "max_watts": "3.5", "pue": "1.135"}}, "memory_w_per_gb": "0.392",
"ssd_wh_per_tb_hour": "1.2", "hdd_wh_per_tb_hour": "0.65", "network_wh_per_gb": "1",
"gpus": {"t4": ["8", "71"]}, "skus": [{"sku": "ABCD1234", "kind": "compute", "vcpus": 2}]}.
"""

import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from apps.costs.energy import _decimal
from apps.costs.patterns import pattern_matches, specificity

CCF_SOURCE = "Cloud Carbon Footprint methodology, Appendix I/III/V (read 2026-11-26)"


class Kind:
    COMPUTE = "compute"
    GPU = "gpu"
    MEMORY = "memory"
    STORAGE_SSD = "storage_ssd"
    STORAGE_HDD = "storage_hdd"
    NETWORK = "network"
    # No estimate, and no missing one either: not usage (tax, credit, purchase), or LLM tokens
    # whose energy is counted from the llm_call events (counting it here would double it).
    NOT_USAGE = "not_usage"
    LLM_TOKENS = "llm_tokens"
    UNCLASSIFIED = "unclassified"

    CHOICES = (
        (COMPUTE, "compute (vCPU-hours)"),
        (GPU, "GPU (GPU-hours)"),
        (MEMORY, "memory (GB-hours)"),
        (STORAGE_SSD, "SSD storage (GB-hours)"),
        (STORAGE_HDD, "HDD storage (GB-hours)"),
        (NETWORK, "network (GB)"),
        (NOT_USAGE, "not usage"),
        (LLM_TOKENS, "LLM tokens (counted from llm_call events)"),
        (UNCLASSIFIED, "no energy estimate"),
    )
    ESTIMATED = (COMPUTE, GPU, MEMORY, STORAGE_SSD, STORAGE_HDD, NETWORK)


@dataclass(frozen=True)
class ProviderCoefficients:
    min_watts: Decimal  # per vCPU at 0 % utilisation
    max_watts: Decimal  # per vCPU at 100 %
    pue: Decimal


DEFAULT_PROVIDERS: dict[str, ProviderCoefficients] = {
    "aws": ProviderCoefficients(Decimal("0.74"), Decimal("3.5"), Decimal("1.135")),
    "gcp": ProviderCoefficients(Decimal("0.71"), Decimal("4.26"), Decimal("1.1")),
    "azure": ProviderCoefficients(Decimal("0.78"), Decimal("3.76"), Decimal("1.185")),
}
# (idle W, 100 % W) per GPU, CCF Appendix III; matched as a word in the SKU or service name.
DEFAULT_GPUS: dict[str, tuple[Decimal, Decimal]] = {
    "a100": (Decimal("46"), Decimal("407")),
    "v100": (Decimal("35"), Decimal("306")),
    "p100": (Decimal("36"), Decimal("306")),
    "p40": (Decimal("30"), Decimal("255")),
    "p4": (Decimal("9"), Decimal("76.5")),
    "t4": (Decimal("8"), Decimal("71")),
    "k80": (Decimal("35"), Decimal("306")),
    "m60": (Decimal("35"), Decimal("306")),
    "k520": (Decimal("26"), Decimal("229")),
    "a10g": (Decimal("18"), Decimal("153")),
}
HOURS_PER_SECOND = Decimal(1) / Decimal(3600)
BYTES_PER_GIB = Decimal(2**30)


@dataclass(frozen=True)
class SkuRule:
    """A deployment's mapping of SKU ids the defaults cannot read: `per_unit` vCPUs or GPUs
    per instance-hour (compute, gpu), or GB per unit (memory, storage, network)."""

    sku: str
    kind: str
    per_unit: Decimal
    gpu: str = ""


@dataclass(frozen=True)
class CloudEnergyConfig:
    providers: dict[str, ProviderCoefficients]
    generic: ProviderCoefficients
    utilisation: Decimal
    memory_w_per_gb: Decimal
    ssd_wh_per_tb_hour: Decimal
    hdd_wh_per_tb_hour: Decimal
    network_wh_per_gb: Decimal
    gpus: dict[str, tuple[Decimal, Decimal]]
    skus: tuple[SkuRule, ...]
    grid: dict[str, Decimal]
    default_region: str
    gpu_pattern: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        names = sorted(self.gpus, key=len, reverse=True)
        pattern = r"(?<![a-z0-9])(" + "|".join(map(re.escape, names)) + r")(?![a-z0-9])"
        object.__setattr__(self, "gpu_pattern", re.compile(pattern if names else r"(?!x)x"))

    def coefficients(self, family: str) -> ProviderCoefficients:
        return self.providers.get(family, self.generic)


def _providers(overrides: dict[str, Any], default_pue: Decimal) -> dict[str, ProviderCoefficients]:
    table = dict(DEFAULT_PROVIDERS)
    if not isinstance(overrides, dict):
        raise ValueError('COSTS_CLOUD_ENERGY["providers"] must be an object of provider names.')
    for name, values in overrides.items():
        family = str(name).lower()
        if family not in ("aws", "gcp", "azure", "other"):
            raise ValueError(
                f'COSTS_CLOUD_ENERGY["providers"] has {name!r}: use aws, gcp, azure or other.'
            )
        if not isinstance(values, dict):
            raise ValueError(f'COSTS_CLOUD_ENERGY["providers"][{name!r}] must be an object.')
        base = table.get(family, _generic(default_pue))
        where = f'COSTS_CLOUD_ENERGY["providers"][{name!r}]'
        coefficients = ProviderCoefficients(
            min_watts=_decimal(values.get("min_watts", base.min_watts), f"{where} min_watts"),
            max_watts=_decimal(values.get("max_watts", base.max_watts), f"{where} max_watts"),
            pue=_decimal(values.get("pue", base.pue), f"{where} pue"),
        )
        if coefficients.max_watts < coefficients.min_watts:
            raise ValueError(f"{where}: max_watts is below min_watts.")
        if coefficients.pue < 1:
            raise ValueError(f"{where}: pue is total facility energy over IT energy: 1 or more.")
        table[family] = coefficients
    return table


def _generic(pue: Decimal) -> ProviderCoefficients:
    # The middle of the three providers' published min and max watts.
    return ProviderCoefficients(Decimal("0.74"), Decimal("3.76"), pue)


def _sku_rules(items: object) -> tuple[SkuRule, ...]:
    if not isinstance(items, list):
        raise ValueError('COSTS_CLOUD_ENERGY["skus"] must be a list of {"sku", "kind", ...}.')
    rules = []
    kinds = {Kind.COMPUTE: "vcpus", Kind.GPU: "gpus", Kind.MEMORY: "gb"}
    kinds |= {Kind.STORAGE_SSD: "gb", Kind.STORAGE_HDD: "gb", Kind.NETWORK: "gb"}
    for item in items:
        if not isinstance(item, dict) or not item.get("sku") or item.get("kind") not in kinds:
            raise ValueError(
                'COSTS_CLOUD_ENERGY["skus"] items need "sku" and "kind" (one of '
                f"{', '.join(kinds)}), e.g. "
                '{"sku": "ABCD1234", "kind": "compute", "vcpus": 2}.'
            )
        kind = item["kind"]
        amount_key = kinds[kind]
        where = f'COSTS_CLOUD_ENERGY["skus"] {item["sku"]!r} {amount_key}'
        amount = _decimal(item.get(amount_key, 1), where)
        rules.append(SkuRule(str(item["sku"]), kind, amount, str(item.get("gpu", "")).lower()))
    return tuple(rules)


def cloud_energy_config_check(
    *, overrides: object, pue: object, grid: dict[str, Decimal], default_region: str
) -> CloudEnergyConfig:
    """The CCF defaults with a deployment's COSTS_CLOUD_ENERGY; ValueError names the bad value."""
    if not isinstance(overrides, dict):
        raise ValueError("COSTS_CLOUD_ENERGY must be a JSON object.")
    known = {"utilisation", "providers", "memory_w_per_gb", "ssd_wh_per_tb_hour"}
    known |= {"hdd_wh_per_tb_hour", "network_wh_per_gb", "gpus", "skus"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(
            f"COSTS_CLOUD_ENERGY has unknown keys {', '.join(unknown)}: "
            f"the keys are {', '.join(sorted(known))}."
        )
    default_pue = _decimal(pue, "COSTS_PUE")
    providers = _providers(overrides.get("providers", {}), default_pue)
    generic = providers.pop("other", _generic(default_pue))
    utilisation = _decimal(overrides.get("utilisation", "0.5"), 'COSTS_CLOUD_ENERGY["utilisation"]')
    if utilisation > 1:
        raise ValueError('COSTS_CLOUD_ENERGY["utilisation"] is a fraction: 0 to 1 (0.5 is 50 %).')
    gpus = dict(DEFAULT_GPUS)
    gpu_overrides = overrides.get("gpus", {})
    if not isinstance(gpu_overrides, dict):
        raise ValueError('COSTS_CLOUD_ENERGY["gpus"] must be {"name": [idle W, max W]}.')
    for name, pair in gpu_overrides.items():
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f'COSTS_CLOUD_ENERGY["gpus"][{name!r}] must be [idle W, max W].')
        where = f'COSTS_CLOUD_ENERGY["gpus"][{name!r}]'
        gpus[str(name).lower()] = (_decimal(pair[0], where), _decimal(pair[1], where))

    def number(key: str, default: str) -> Decimal:
        return _decimal(overrides.get(key, default), f"COSTS_CLOUD_ENERGY[{key!r}]")

    return CloudEnergyConfig(
        providers=providers,
        generic=generic,
        utilisation=utilisation,
        memory_w_per_gb=number("memory_w_per_gb", "0.392"),
        ssd_wh_per_tb_hour=number("ssd_wh_per_tb_hour", "1.2"),
        hdd_wh_per_tb_hour=number("hdd_wh_per_tb_hour", "0.65"),
        network_wh_per_gb=number("network_wh_per_gb", "1"),
        gpus=gpus,
        skus=_sku_rules(overrides.get("skus", [])),
        grid=grid,
        default_region=default_region,
    )


@lru_cache(maxsize=1)
def cloud_energy_config() -> CloudEnergyConfig:
    from django.conf import settings

    from apps.costs.energy import energy_config

    llm = energy_config()
    return cloud_energy_config_check(
        overrides=settings.COSTS_CLOUD_ENERGY,
        pue=settings.COSTS_PUE,
        grid=llm.grid,
        default_region=llm.default_region,
    )


# ---- classification -------------------------------------------------------------------------


@dataclass(frozen=True)
class Basis:
    """How one (provider, service, SKU, unit, region, category) is turned into energy."""

    kind: str
    # Wh per unit of ConsumedQuantity, PUE included; None: no estimate. Storage billed per
    # GB-month is per GB-hour here and multiplied by the hours of the charge period's month.
    wh_per_unit: Decimal | None
    per_month: bool
    grid_region: str
    gco2e_per_kwh: Decimal
    method: str
    coefficients: dict[str, str]


def provider_family(provider: str) -> str:
    name = provider.lower()
    if "amazon" in name or name == "aws" or name.startswith("aws"):
        return "aws"
    if "google" in name or name == "gcp":
        return "gcp"
    if "microsoft" in name or "azure" in name:
        return "azure"
    return "other"


_LEADING_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:[kKmM](?=\s))?\s*")
_SPACES = re.compile(r"[\s_]+")

HOUR_UNITS = {"hrs", "hr", "hour", "hours", "h"}
SECOND_UNITS = {"seconds", "second", "s", "sec"}
VCPU_HOUR_UNITS = {"vcpu-hours", "vcpu-hour", "vcpu hours", "vcpu hour", "vcpu-hrs", "vcpu-hr"}
GPU_HOUR_UNITS = {"gpu-hours", "gpu-hour", "gpu hours", "gpu hour", "gpu-hrs"}
GB_MONTH_UNITS = {
    "gb-mo": Decimal(1),
    "gb-month": Decimal(1),
    "gb/month": Decimal(1),
    "gb month": Decimal(1),
    "gib-month": Decimal(1),
    "gibibyte month": Decimal(1),
    "gigabyte month": Decimal(1),
    "tb-mo": Decimal(1000),
    "tb/month": Decimal(1000),
    "tebibyte month": Decimal(1024),
}
GB_HOUR_UNITS = {
    "gb-hours": Decimal(1),
    "gb-hour": Decimal(1),
    "gb-hrs": Decimal(1),
    "gb hours": Decimal(1),
    "gib-hours": Decimal(1),
    "gibibyte hour": Decimal(1),
    "byte-seconds": HOURS_PER_SECOND / BYTES_PER_GIB,
    "gib-seconds": HOURS_PER_SECOND,
    "gb-seconds": HOURS_PER_SECOND,
    "lambda-gb-second": HOURS_PER_SECOND,
}
GB_UNITS = {
    "gb": Decimal(1),
    "gib": Decimal(1),
    "gibibyte": Decimal(1),
    "gigabyte": Decimal(1),
    "gigabytes": Decimal(1),
    "tb": Decimal(1000),
    "tebibyte": Decimal(1024),
    "bytes": Decimal(1) / BYTES_PER_GIB,
}
COMPUTE_SERVICES = ("elastic compute cloud", "ec2", "compute engine", "virtual machines")
BLOCK_STORAGE = ("elastic block store", "ebs", "persistent disk", "managed disk")
OBJECT_STORAGE = ("s3", "simple storage service", "cloud storage", "storage", "glacier", "backup")
NETWORK_SERVICES = ("data transfer", "datatransfer", "bandwidth", "networking", "network")
MEMORY_SERVICES = (*COMPUTE_SERVICES, "kubernetes", "fargate", "lambda", "cloud run")

# Instance types in a SKU id: t3.large or BoxUsage:t3.large (AWS), n2-standard-4 (GCP),
# Standard_D2s_v5 or "D2s v5" (Azure).
_AWS_SIZES = {"nano": 1, "micro": 1, "small": 1, "medium": 2, "large": 2, "xlarge": 4}
_AWS_TYPE = re.compile(r"(?:^|:)[a-z][a-z0-9-]*\.(nano|micro|small|medium|large|(\d*)xlarge)$")
_GCP_TYPE = re.compile(r"^[a-z][a-z0-9]*-(?:standard|highmem|highcpu|custom)-(\d+)$")
_AZURE_TYPE = re.compile(r"^(?:standard[_ ])?[a-z]{1,3}(\d+)[a-z]*(?:[_ ]v\d+)?$")


def _unit(raw: str) -> tuple[Decimal, str]:
    """(multiplier, unit): Azure writes "10 Hours" or "1 GB/Month", the quantity counting those."""
    text = raw.strip().lower()
    multiplier = Decimal(1)
    match = _LEADING_NUMBER.match(text)
    if match and match.end() < len(text):
        multiplier = Decimal(match.group(1))
        text = text[match.end() :]
        if text.startswith("k "):
            multiplier, text = multiplier * 1000, text[2:]
    return multiplier, _SPACES.sub(" ", text).strip()


def vcpus_in(sku: str) -> int | None:
    """The vCPU count an instance-type SKU spells, or None."""
    text = sku.strip().lower()
    if match := _AWS_TYPE.search(text):
        size, factor = match.group(1), match.group(2)
        if size.endswith("xlarge") and size != "xlarge":
            return 4 * int(factor)
        return _AWS_SIZES[size]
    if match := _GCP_TYPE.match(text):
        return int(match.group(1))
    if match := _AZURE_TYPE.match(text):
        return int(match.group(1))
    return None


def _has(text: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"(?<![a-z]){re.escape(word)}(?![a-z])", text) for word in words)


@dataclass(frozen=True)
class _Usage:
    kind: str
    per_unit: Decimal  # usage (vCPU-h, GPU-h, GB-h, GB) per unit of ConsumedQuantity
    per_month: bool = False
    gpu: str = ""
    reason: str = ""


def _classify(
    config: CloudEnergyConfig, service: str, sku: str, unit: str, category: str
) -> _Usage:
    if category.lower() != "usage":
        return _Usage(Kind.NOT_USAGE, Decimal(0), reason=f"{category} is not usage")
    multiplier, name = _unit(unit)
    service_l, sku_l = service.lower(), sku.lower()
    if "token" in name:
        return _Usage(Kind.LLM_TOKENS, Decimal(0), reason="counted from llm_call events")
    best: SkuRule | None = None
    for rule in config.skus:
        if pattern_matches(rule.sku.lower(), sku_l) and (
            best is None or specificity(rule.sku) > specificity(best.sku)
        ):
            best = rule
    time_factor = (
        Decimal(1) if name in HOUR_UNITS else HOURS_PER_SECOND if name in SECOND_UNITS else None
    )
    if best is not None:
        per_unit = best.per_unit * multiplier
        if best.kind in (Kind.COMPUTE, Kind.GPU):
            if time_factor is None:
                return _Usage(Kind.UNCLASSIFIED, Decimal(0), reason=f"{unit!r} is not a time unit")
            return _Usage(best.kind, per_unit * time_factor, gpu=best.gpu)
        return _Usage(best.kind, per_unit)
    if name in VCPU_HOUR_UNITS:
        return _Usage(Kind.COMPUTE, multiplier)
    gpu = config.gpu_pattern.search(f"{sku_l} {service_l}")
    if gpu and (name in GPU_HOUR_UNITS or time_factor is not None):
        return _Usage(Kind.GPU, multiplier * (time_factor or 1), gpu=gpu.group(1))
    if time_factor is not None:
        vcpus = vcpus_in(sku)
        if vcpus is not None:
            return _Usage(Kind.COMPUTE, multiplier * time_factor * vcpus)
        if _has(service_l, COMPUTE_SERVICES):
            return _Usage(
                Kind.UNCLASSIFIED,
                Decimal(0),
                reason="instance time whose SKU id names no instance type, so the vCPU count "
                'is unknown: map the SKU in COSTS_CLOUD_ENERGY["skus"]',
            )
    if name in GB_MONTH_UNITS:
        gb = multiplier * GB_MONTH_UNITS[name]
        if _has(service_l, BLOCK_STORAGE) or _has(service_l, ("elastic compute cloud", "ec2")):
            return _Usage(Kind.STORAGE_SSD, gb, per_month=True)
        if _has(service_l, OBJECT_STORAGE):
            return _Usage(Kind.STORAGE_HDD, gb, per_month=True)
    if name in GB_HOUR_UNITS and _has(service_l, MEMORY_SERVICES):
        return _Usage(Kind.MEMORY, multiplier * GB_HOUR_UNITS[name])
    if name in GB_UNITS and _has(service_l, NETWORK_SERVICES):
        return _Usage(Kind.NETWORK, multiplier * GB_UNITS[name])
    return _Usage(
        Kind.UNCLASSIFIED,
        Decimal(0),
        reason=f"no coefficient for {service or '(no service)'} in {unit or '(no unit)'}",
    )


def cloud_energy_basis(
    config: CloudEnergyConfig,
    *,
    provider: str,
    service: str,
    sku: str,
    unit: str,
    region: str,
    category: str,
) -> Basis:
    family = provider_family(provider)
    coefficients = config.coefficients(family)
    region_key = region.strip().lower().replace(" ", "")
    grid_region = region_key if region_key in config.grid else config.default_region
    intensity = config.grid[grid_region]
    usage = _classify(config, service, sku, unit, category)
    pue = coefficients.pue
    used: dict[str, str] = {"provider": family, "pue": str(pue)}
    if usage.kind == Kind.COMPUTE:
        watts = coefficients.min_watts + config.utilisation * (
            coefficients.max_watts - coefficients.min_watts
        )
        used |= {
            "min_watts": str(coefficients.min_watts),
            "max_watts": str(coefficients.max_watts),
            "utilisation": str(config.utilisation),
        }
        per_usage, what = watts, f"vCPU-hours x {watts} W"
    elif usage.kind == Kind.GPU:
        idle, peak = config.gpus[usage.gpu]
        watts = idle + config.utilisation * (peak - idle)
        used |= {"gpu": usage.gpu, "idle_watts": str(idle), "max_watts": str(peak)}
        used["utilisation"] = str(config.utilisation)
        per_usage, what = watts, f"{usage.gpu.upper()} GPU-hours x {watts} W"
    elif usage.kind == Kind.MEMORY:
        per_usage, what = config.memory_w_per_gb, f"GB-hours x {config.memory_w_per_gb} W/GB"
        used["memory_w_per_gb"] = str(config.memory_w_per_gb)
    elif usage.kind in (Kind.STORAGE_SSD, Kind.STORAGE_HDD):
        ssd = usage.kind == Kind.STORAGE_SSD
        per_tb = config.ssd_wh_per_tb_hour if ssd else config.hdd_wh_per_tb_hour
        per_usage = per_tb / Decimal(1000)
        what = f"{'SSD' if ssd else 'HDD'} GB-hours x {per_tb} Wh/TB-hour"
        used["wh_per_tb_hour"] = str(per_tb)
    elif usage.kind == Kind.NETWORK:
        per_usage, what = config.network_wh_per_gb, f"GB x {config.network_wh_per_gb} Wh/GB"
        used["network_wh_per_gb"] = str(config.network_wh_per_gb)
    else:
        return Basis(usage.kind, None, False, grid_region, intensity, usage.reason, {})
    used["grid_gco2e_per_kwh"] = str(intensity)
    month = " (GB-months x hours in the month)" if usage.per_month else ""
    method = f"CCF {usage.kind}: {what}{month} x PUE {pue}; grid {grid_region} {intensity} g/kWh"
    return Basis(
        kind=usage.kind,
        wh_per_unit=usage.per_unit * per_usage * pue,
        per_month=usage.per_month,
        grid_region=grid_region,
        gco2e_per_kwh=intensity,
        method=method,
        coefficients=used,
    )
