"""Writes of energy figures: cloud line items (CCF coefficients, apps.costs.cloud_energy) and
measured GPU energy of self-hosted models (apps.costs.measured)."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.billing.models import CostLineItem
from apps.costs.cloud_energy import CloudEnergyConfig, cloud_energy_basis, cloud_energy_config
from apps.costs.energy import THOUSAND, WH_QUANTUM, energy_config
from apps.costs.measured import (
    PowerSource,
    power_samples,
    power_sources,
    shares,
    trapezoid_wh,
    window_bounds,
)
from apps.costs.models import (
    CLOUD_ENERGY_BASIS_KEY,
    CloudEnergy,
    CloudEnergyBasis,
    EnergySource,
    LlmUsage,
    MeasuredEnergyWindow,
    MeasuredWindowStatus,
)
from apps.slo.promql import PrometheusUnreachable, _call

logger = logging.getLogger(__name__)


def _bases_upsert(keys: Iterable[tuple[str, ...]], config: CloudEnergyConfig) -> int:
    """Writes the basis of every key (a bill has a few hundred distinct ones at most)."""
    now = timezone.now()
    rows = []
    for key in keys:
        provider, service, sku, unit, region, category = key
        basis = cloud_energy_basis(
            config,
            provider=provider,
            service=service,
            sku=sku,
            unit=unit,
            region=region,
            category=category,
        )
        rows.append(
            CloudEnergyBasis(
                **dict(zip(CLOUD_ENERGY_BASIS_KEY, key, strict=True)),
                kind=basis.kind,
                wh_per_unit=basis.wh_per_unit,
                per_month=basis.per_month,
                grid_region=basis.grid_region,
                gco2e_per_kwh=basis.gco2e_per_kwh,
                method=basis.method[:500],
                coefficients=basis.coefficients,
                computed_at=now,
            )
        )
    CloudEnergyBasis.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=list(CLOUD_ENERGY_BASIS_KEY),
        update_fields=[
            "kind",
            "wh_per_unit",
            "per_month",
            "grid_region",
            "gco2e_per_kwh",
            "method",
            "coefficients",
            "computed_at",
        ],
    )
    return len(rows)


# One statement for all of an import's rows: Wh rounded to 6 places first, gCO2e from the
# rounded Wh (as LLM calls do), so a row's two figures agree with what the page shows.
# PostgreSQL's round() on numeric rounds half away from zero. Only rows with an estimate are
# stored: why the others have none is their basis's (found by the same key), and most rows of
# a bill (requests, API calls) have none; storing them doubled the cost of this step.
_INSERT = """
INSERT INTO {energy} (line_item_id, basis_id, energy_wh, gco2e)
SELECT s.id, s.basis_id, s.wh, round(s.wh * s.g / 1000, 6)
FROM (
    SELECT li.id, b.id AS basis_id, b.gco2e_per_kwh AS g,
        round(li.consumed_quantity * b.wh_per_unit * CASE WHEN b.per_month THEN
            extract(epoch FROM (date_trunc('month', li.charge_period_start AT TIME ZONE 'UTC')
                + interval '1 month' - date_trunc('month',
                li.charge_period_start AT TIME ZONE 'UTC'))) / 3600
            ELSE 1 END, 6) AS wh
    FROM {items} li
    JOIN {basis} b ON b.provider = li.provider AND b.service_name = li.service_name
        AND b.sku_id = li.sku_id AND b.consumed_unit = li.consumed_unit
        AND b.region_id = li.region_id AND b.charge_category = li.charge_category
    WHERE {where} AND b.wh_per_unit IS NOT NULL AND li.consumed_quantity IS NOT NULL
) s
"""


def cloud_energy_compute(
    *,
    import_id: int | None = None,
    config: CloudEnergyConfig | None = None,
    fresh: bool = False,
    keys: Iterable[tuple[str, ...]] | None = None,
) -> int:
    """Estimates the energy of one import's line items (all line items: None); returns how
    many line items have an estimate. Idempotent: their earlier estimates are replaced.
    `fresh`: the import's rows were just written in this transaction and have none yet."""
    config = config or cloud_energy_config()
    if keys is None:  # the importer passes the keys it saw: a DISTINCT sorts every row
        items = CostLineItem.objects.all()
        if import_id is not None:
            items = items.filter(billing_import_id=import_id)
        keys = items.order_by().values_list(*CLOUD_ENERGY_BASIS_KEY).distinct()
    with transaction.atomic():
        _bases_upsert(sorted(keys), config)
        if import_id is None:
            CloudEnergy.objects.all().delete()
        elif not fresh:
            CloudEnergy.objects.filter(line_item__billing_import_id=import_id).delete()
        where, params = ("li.billing_import_id = %s", [import_id]) if import_id else ("true", [])
        sql = _INSERT.format(
            energy=CloudEnergy._meta.db_table,
            items=CostLineItem._meta.db_table,
            basis=CloudEnergyBasis._meta.db_table,
            where=where,
        )
        with connection.cursor() as cursor:
            # Rows written in this same transaction have no statistics yet: the planner takes
            # the import's rows for one and loops over the bases with an index scan each
            # (19 s for 90,000 rows, against 0.4 s for a hash join).
            cursor.execute("SET LOCAL enable_nestloop = off")
            cursor.execute(sql, params)
            written = int(cursor.rowcount or 0)
            cursor.execute("RESET enable_nestloop")
            return written


def cloud_energy_recompute(*, config: CloudEnergyConfig | None = None) -> int:
    """Every line item again, after the coefficients changed (one transaction: the pages see
    the old figures or the new ones)."""
    return cloud_energy_compute(config=config)


# ---- measured GPU energy --------------------------------------------------------------------


@dataclass(frozen=True)
class WindowResult:
    source: str
    window_start: datetime
    status: str
    energy_wh: Decimal | None
    calls: int
    refreshed_actions: int = 0


def _usage_rows(source: PowerSource, start: datetime, end: datetime) -> list[LlmUsage]:
    rows = LlmUsage.objects.in_window(start, end).filter(provider=source.provider)
    if source.model.endswith("*"):
        rows = rows.filter(model__startswith=source.model[:-1])
    else:
        rows = rows.filter(model=source.model)
    return list(
        rows.order_by("event_id").only(
            "event_id",
            "action_id",
            "input_tokens",
            "output_tokens",
            "cache_write_5m_tokens",
            "cache_write_1h_tokens",
            "cache_read_tokens",
            "energy_wh",
            "gco2e",
            "energy_source",
            "grid_region",
        )
    )


def _tokens(row: LlmUsage) -> int:
    return (
        row.input_tokens
        + row.output_tokens
        + row.cache_write_5m_tokens
        + row.cache_write_1h_tokens
        + row.cache_read_tokens
    )


def measured_window_integrate(
    *, source: PowerSource, start: datetime, client: Any, step_seconds: int, minutes: int
) -> WindowResult:
    """Integrates one closed window of `source` and shares it across its calls (see
    apps.costs.measured). Raises PrometheusUnreachable / PromqlError: nothing is written then,
    and the next run tries the window again."""
    end = start + timedelta(minutes=minutes)
    result = _call(client.custom_query_range, source.query, start, end, f"{step_seconds}s")
    samples = power_samples(result)
    config = energy_config()
    changed_actions: set[str] = set()
    with transaction.atomic():
        rows = _usage_rows(source, start, end)
        tokens = sum(_tokens(row) for row in rows)
        if len(samples) < 2:
            status, wh = MeasuredWindowStatus.NO_DATA, None
        else:
            status = MeasuredWindowStatus.MEASURED
            wh = (trapezoid_wh(samples) * source.pue).quantize(WH_QUANTUM)
            updated = []
            for row, part in zip(rows, shares(wh, [_tokens(r) for r in rows]), strict=True):
                region = source.region or row.grid_region
                if region not in config.grid:
                    region = config.default_region
                gco2e = (part * config.grid[region] / THOUSAND).quantize(WH_QUANTUM)
                if (row.energy_wh, row.gco2e, row.energy_source, row.grid_region) == (
                    part,
                    gco2e,
                    EnergySource.MEASURED,
                    region,
                ):
                    continue
                row.energy_wh, row.gco2e, row.grid_region = part, gco2e, region
                row.energy_source = EnergySource.MEASURED
                updated.append(row)
                if row.action_id:
                    changed_actions.add(row.action_id)
            LlmUsage.objects.bulk_update(
                updated, ["energy_wh", "gco2e", "energy_source", "grid_region"], batch_size=1000
            )
        MeasuredEnergyWindow.objects.update_or_create(
            source=source.name,
            window_start=start,
            defaults={
                "window_end": end,
                "status": status,
                "energy_wh": wh,
                "samples": len(samples),
                "step_seconds": step_seconds,
                "calls": len(rows),
                "tokens": tokens,
                "selector": source.selector,
                "computed_at": timezone.now(),
            },
        )
    refreshed = 0
    if changed_actions:
        # The energy_per_action SLO facts of these actions were computed from the estimates.
        from apps.slo.rollups import slo_actions_refresh

        refreshed = slo_actions_refresh(action_ids=changed_actions)
    return WindowResult(source.name, start, status, wh, len(rows), refreshed)


def measured_windows_run(
    *,
    now: datetime,
    sources: Iterable[PowerSource] | None = None,
    redo: bool = False,
    since: datetime | None = None,
) -> list[WindowResult]:
    """Every closed window of every source not yet integrated (all of them with `redo`) since
    COSTS_MEASURED_LOOKBACK_HOURS ago (or `since`). Stops at the first Prometheus failure."""
    from apps.slo.promql import prometheus_client

    sources = tuple(power_sources() if sources is None else sources)
    if not sources:
        return []
    client = prometheus_client()
    if client is None:
        raise PrometheusUnreachable(
            "PROMETHEUS_URL is not set: measured GPU energy needs it (COSTS_MEASURED_POWER)."
        )
    minutes = settings.COSTS_MEASURED_WINDOW_MINUTES
    end_before = now - timedelta(minutes=settings.COSTS_MEASURED_LAG_MINUTES)
    lookback = (
        end_before - since
        if since is not None
        else timedelta(hours=settings.COSTS_MEASURED_LOOKBACK_HOURS)
    )
    starts = window_bounds(end_before, minutes, lookback)
    results = []
    for source in sources:
        done = set()
        if not redo:
            done = set(
                MeasuredEnergyWindow.objects.filter(
                    source=source.name, window_start__in=starts
                ).values_list("window_start", flat=True)
            )
        for start in starts:
            if start in done:
                continue
            results.append(
                measured_window_integrate(
                    source=source,
                    start=start,
                    client=client,
                    step_seconds=settings.COSTS_MEASURED_STEP_SECONDS,
                    minutes=minutes,
                )
            )
    return results
