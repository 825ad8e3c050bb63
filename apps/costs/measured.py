"""Measured GPU energy of self-hosted models, from DCGM power samples in Prometheus.

For each COSTS_MEASURED_POWER entry and each closed window (COSTS_MEASURED_WINDOW_MINUTES,
aligned to UTC midnight, integrated COSTS_MEASURED_LAG_MINUTES after it ends):

1. `sum(<selector>)` of DCGM_FI_DEV_POWER_USAGE (watts, one series per GPU) is read with
   query_range from the window's start to its end, every COSTS_MEASURED_STEP_SECONDS (each
   point is Prometheus's last sample within its 5-minute lookback);
2. Wh = trapezoid rule over those points: sum of (W_i + W_i+1) / 2 x (t_i+1 - t_i) / 3600,
   times the entry's PUE (default 1: the figure is what the GPUs drew; their host's CPU and
   memory and the facility's overhead are not measured);
3. the window's Wh is shared across the model's llm_calls in [start, end) in proportion to
   their tokens (input, cache and output), rounded to 6 places with the rounding remainder on
   the largest call, so the shares add up to the window exactly; gCO2e from each call's grid
   region (or the entry's own); energy_source becomes "measured".

Re-running a window reads the same samples and writes the same figures. A window without
power samples writes nothing to the calls: they keep their estimate, labelled estimated.
No Django imports at module level: settings validate COSTS_MEASURED_POWER with this module.
"""

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from apps.costs.energy import WH_QUANTUM, _decimal

METRIC = "DCGM_FI_DEV_POWER_USAGE"
SECONDS_PER_HOUR = Decimal(3600)


@dataclass(frozen=True)
class PowerSource:
    """One self-hosted model (provider and model, `*` suffix for versions) and its GPUs."""

    name: str
    provider: str
    model: str
    selector: str
    region: str = ""
    pue: Decimal = Decimal(1)

    @property
    def query(self) -> str:
        return f"sum({self.selector})"


def measured_power_config_check(items: object, grid: Iterable[str] = ()) -> tuple[PowerSource, ...]:
    """COSTS_MEASURED_POWER as PowerSources; ValueError names the bad entry."""
    if not isinstance(items, list):
        raise ValueError(
            'COSTS_MEASURED_POWER must be a JSON list of {"provider", "model", "selector"} objects.'
        )
    sources: list[PowerSource] = []
    for index, item in enumerate(items):
        where = f"COSTS_MEASURED_POWER[{index}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be an object with provider, model and selector.")
        missing = [key for key in ("provider", "model", "selector") if not item.get(key)]
        if missing:
            raise ValueError(f"{where} needs {', '.join(missing)}.")
        selector = str(item["selector"]).strip()
        if not selector.startswith(METRIC):
            raise ValueError(
                f"{where} selector must select {METRIC} (watts), e.g. "
                f'{METRIC}{{pod=~"vllm-.*"}}, not {selector!r}.'
            )
        pue = _decimal(item.get("pue", "1"), f"{where} pue")
        if pue < 1:
            raise ValueError(f"{where} pue is total facility energy over IT energy: 1 or more.")
        name = str(item.get("name") or f"{item['provider']}/{item['model']}")[:200]
        if any(source.name == name for source in sources):
            raise ValueError(f"{where}: two entries are named {name!r}; give each a name.")
        region = str(item.get("region", "")).strip().lower()
        if region and grid and region not in set(grid):
            raise ValueError(f"{where} region {region!r} has no grid intensity.")
        sources.append(
            PowerSource(
                name=name,
                provider=str(item["provider"]),
                model=str(item["model"]),
                selector=selector,
                region=region,
                pue=pue,
            )
        )
    return tuple(sources)


def power_sources() -> tuple[PowerSource, ...]:
    from django.conf import settings

    from apps.costs.energy import energy_config

    return measured_power_config_check(
        settings.COSTS_MEASURED_POWER, grid=energy_config().grid.keys()
    )


def trapezoid_wh(samples: Sequence[tuple[Decimal, Decimal]]) -> Decimal:
    """Wh from (unix seconds, watts) points, oldest first."""
    joules = Decimal(0)
    for (t0, w0), (t1, w1) in itertools.pairwise(samples):
        joules += (w0 + w1) / 2 * (t1 - t0)
    return joules / SECONDS_PER_HOUR


def power_samples(result: list[dict[str, Any]]) -> list[tuple[Decimal, Decimal]]:
    """The points of a query_range answer, NaN and negative readings dropped."""
    points: dict[Decimal, Decimal] = {}
    for series in result:
        for stamp, value in series.get("values", []):
            try:
                watts = Decimal(str(value))
            except InvalidOperation:
                continue
            if not watts.is_finite() or watts < 0:
                continue
            moment = Decimal(str(stamp))
            points[moment] = points.get(moment, Decimal(0)) + watts
    return sorted(points.items())


def shares(total_wh: Decimal, weights: Sequence[int]) -> list[Decimal]:
    """`total_wh` split by `weights` to 6 places, adding up to it exactly: each share is
    rounded down and the remainder goes to the largest weight (the first of equals)."""
    if not weights:
        return []
    total = sum(weights)
    if total == 0:
        weights, total = [1] * len(weights), len(weights)
    parts = [(total_wh * w / total).quantize(WH_QUANTUM, rounding=ROUND_DOWN) for w in weights]
    largest = max(range(len(weights)), key=lambda i: (weights[i], -i))
    parts[largest] += total_wh - sum(parts)
    return parts


def window_bounds(end_before: datetime, minutes: int, lookback: timedelta) -> list[datetime]:
    """Starts of the whole windows ending at or before `end_before`, from `lookback` ago."""
    size = timedelta(minutes=minutes)
    midnight = end_before.replace(hour=0, minute=0, second=0, microsecond=0)
    last_end = midnight + ((end_before - midnight) // size) * size
    first = last_end - lookback
    first = first.replace(second=0, microsecond=0)
    first_midnight = first.replace(hour=0, minute=0)
    first = first_midnight + -(-(first - first_midnight) // size) * size
    starts = []
    start = first
    while start + size <= last_end:
        starts.append(start)
        start += size
    return starts
