"""Reads for the Energy page: Wh and gCO2e by team, agent, model, provider or service over a
date range, measured and estimated apart.

LLM energy comes from LlmUsage (measured for self-hosted models with DCGM power, estimated
otherwise). Cloud energy comes from each line item's estimate (CloudEnergy), given to teams and
agents in proportion to the line item's CostAllocation shares (effective cost; a zero-cost line
item is split evenly between its allocations; one with none counts as unallocated). Cloud
energy is always estimated."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate

from apps.billing.models import CostAllocation, CostLineItem
from apps.costs.cloud_energy import Kind
from apps.costs.models import CloudEnergy, CloudEnergyBasis, EnergySource, LlmUsage
from apps.fleet.models import Agent, Team

DIMENSIONS = {
    "team": "Team",
    "agent": "Agent",
    "model": "Model",
    "provider": "Provider",
    "service": "Service",
}
UNALLOCATED = "(unallocated)"
NO_AGENT = "(no agent)"
CLOUD_NO_MODEL = "(cloud, no model)"
ZERO = Decimal(0)
TOP_ACTIONS = 10
# Tableau 10: distinct in light and dark themes.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


@dataclass
class EnergyRow:
    """One group of the chosen dimension."""

    label: str
    measured_wh: Decimal = ZERO  # LLM calls with DCGM power
    llm_estimated_wh: Decimal = ZERO
    cloud_estimated_wh: Decimal = ZERO
    measured_gco2e: Decimal = ZERO
    estimated_gco2e: Decimal = ZERO
    llm_calls: int = 0
    actions: int = 0
    action_measured_wh: Decimal = ZERO
    action_estimated_wh: Decimal = ZERO

    @property
    def estimated_wh(self) -> Decimal:
        return self.llm_estimated_wh + self.cloud_estimated_wh

    @property
    def total_wh(self) -> Decimal:
        return self.measured_wh + self.estimated_wh

    @property
    def total_gco2e(self) -> Decimal:
        return self.measured_gco2e + self.estimated_gco2e

    @property
    def measured_wh_per_action(self) -> Decimal | None:
        return self.action_measured_wh / self.actions if self.actions else None

    @property
    def estimated_wh_per_action(self) -> Decimal | None:
        return self.action_estimated_wh / self.actions if self.actions else None


@dataclass(frozen=True)
class MissingEstimate:
    """Cloud line items in the range with no energy estimate, grouped by why."""

    provider: str
    service_name: str
    consumed_unit: str
    reason: str
    line_items: int
    effective_cost: Decimal
    currency: str


@dataclass(frozen=True)
class ActionEnergy:
    action_id: str
    agent: str
    calls: int
    measured_wh: Decimal
    estimated_wh: Decimal


@dataclass
class EnergyReport:
    dimension: str
    start: date
    end: date  # inclusive
    rows: list[EnergyRow]
    total: EnergyRow
    chart: dict[str, Any]
    missing: list[MissingEstimate] = field(default_factory=list)
    top_actions: list[ActionEnergy] = field(default_factory=list)


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )


def _labels(dimension: str, keys: set[Any]) -> dict[Any, str]:
    ids = {k for k in keys if isinstance(k, int)}
    if dimension == "team":
        found = dict(Team.objects.filter(pk__in=ids).values_list("pk", "slug"))
        return {k: found.get(k, UNALLOCATED) if k is not None else UNALLOCATED for k in keys}
    if dimension == "agent":
        found = dict(Agent.objects.filter(pk__in=ids).values_list("pk", "slug"))
        return {k: found.get(k, NO_AGENT) if k is not None else NO_AGENT for k in keys}
    return {k: str(k) if k else "(none)" for k in keys}


_LLM_FIELD = {
    "team": "team_id",
    "agent": "agent_id",
    "model": "model",
    "provider": "provider",
    "service": "provider",
}


def _llm_key(dimension: str, value: Any) -> Any:
    return f"LLM: {value}" if dimension == "service" else value


_CLOUD_EXPR = {
    "team": "team_id",
    "agent": "agent_id",
    "model": "NULL",
    "provider": "provider",
    "service": "service_name",
}

# Each line item's energy times each allocation's share of its effective cost.
_CLOUD_SQL = """
SELECT {key} AS key, day, sum(wh * share) AS wh, sum(g * share) AS g
FROM (
    SELECT li.provider, li.service_name, a.team_id, a.agent_id,
        (li.charge_period_start AT TIME ZONE 'UTC')::date AS day,
        e.energy_wh AS wh, e.gco2e AS g,
        CASE
            WHEN a.id IS NULL THEN 1
            WHEN li.effective_cost <> 0 THEN a.effective_cost / li.effective_cost
            ELSE 1.0 / count(a.id) OVER (PARTITION BY li.id)
        END AS share
    FROM {energy} e
    JOIN {items} li ON li.id = e.line_item_id
    LEFT JOIN {allocations} a ON a.line_item_id = li.id
    WHERE li.charge_period_start >= %s AND li.charge_period_start < %s
        AND e.energy_wh IS NOT NULL
) shared
GROUP BY 1, 2
"""


def _cloud_rows(dimension: str, lo: datetime, hi: datetime) -> list[tuple[Any, date, Any, Any]]:
    sql = _CLOUD_SQL.format(
        key=_CLOUD_EXPR[dimension],
        energy=CloudEnergy._meta.db_table,
        items=CostLineItem._meta.db_table,
        allocations=CostAllocation._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [lo, hi])
        return list(cursor.fetchall())


NOT_ESTIMATED_YET = "not estimated yet: run manage.py cloud_energy_recompute"
NO_QUANTITY = "no ConsumedQuantity in the bill"

# Usage line items without an estimate, by why: their basis (same key) says it cannot be
# classified, or the line has no quantity, or no estimate was made (imported before energy
# estimates existed, or the step failed).
_MISSING_SQL = """
SELECT li.provider, li.service_name, li.consumed_unit, li.billing_currency,
    CASE
        WHEN b.id IS NULL THEN %s
        WHEN b.wh_per_unit IS NULL THEN b.method
        WHEN li.consumed_quantity IS NULL THEN %s
        ELSE %s
    END AS reason,
    count(*), sum(li.effective_cost)
FROM {items} li
LEFT JOIN {basis} b ON b.provider = li.provider AND b.service_name = li.service_name
    AND b.sku_id = li.sku_id AND b.consumed_unit = li.consumed_unit
    AND b.region_id = li.region_id AND b.charge_category = li.charge_category
LEFT JOIN {energy} e ON e.line_item_id = li.id
WHERE li.charge_category = 'Usage' AND {where}
    AND e.line_item_id IS NULL
    AND (b.id IS NULL OR b.kind NOT IN (%s, %s))
GROUP BY 1, 2, 3, 4, 5
"""


def cloud_energy_missing(
    lo: datetime | None = None, hi: datetime | None = None
) -> list[MissingEstimate]:
    """Cloud usage with no energy estimate (and not LLM tokens, counted from events), most
    line items first."""
    where, params = "true", []
    if lo is not None and hi is not None:
        where, params = "li.charge_period_start >= %s AND li.charge_period_start < %s", [lo, hi]
    sql = _MISSING_SQL.format(
        items=CostLineItem._meta.db_table,
        basis=CloudEnergyBasis._meta.db_table,
        energy=CloudEnergy._meta.db_table,
        where=where,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                NOT_ESTIMATED_YET,
                NO_QUANTITY,
                NOT_ESTIMATED_YET,
                *params,
                Kind.LLM_TOKENS,
                Kind.NOT_USAGE,
            ],
        )
        found = [
            MissingEstimate(provider, service, unit, reason, n, cost, currency)
            for provider, service, unit, currency, reason, n, cost in cursor.fetchall()
        ]
    return sorted(found, key=lambda m: (-m.line_items, m.provider, m.service_name, m.reason))


def energy_report(*, dimension: str, start: date, end: date) -> EnergyReport:
    """The Energy page's figures for [start, end] (whole UTC days). Five queries, plus one
    for the labels of teams or agents."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    lo, hi = _bounds(start, end)
    rows: dict[Any, EnergyRow] = {}
    per_day: dict[tuple[Any, str], dict[date, Decimal]] = defaultdict(dict)

    def row(key: Any) -> EnergyRow:
        if key not in rows:
            rows[key] = EnergyRow(label="")
        return rows[key]

    llm_field = _LLM_FIELD[dimension]
    usage = LlmUsage.objects.in_window(lo, hi)
    measured = Q(energy_source=EnergySource.MEASURED)
    for r in (
        usage.values(llm_field, "energy_source", day=TruncDate("ts"))
        .annotate(wh=Sum("energy_wh"), g=Sum("gco2e"), calls=Count("pk"))
        .order_by()
    ):
        key = _llm_key(dimension, r[llm_field])
        group = row(key)
        group.llm_calls += r["calls"]
        if r["energy_source"] == EnergySource.MEASURED:
            group.measured_wh += r["wh"]
            group.measured_gco2e += r["g"]
            series = (key, "measured")
        else:
            group.llm_estimated_wh += r["wh"]
            group.estimated_gco2e += r["g"]
            series = (key, "estimated")
        per_day[series][r["day"]] = per_day[series].get(r["day"], ZERO) + r["wh"]
    for r in (
        usage.filter(action_id__isnull=False)
        .values(llm_field)
        .annotate(
            actions=Count("action_id", distinct=True),
            m=Sum("energy_wh", filter=measured, default=ZERO),
            e=Sum("energy_wh", filter=~measured, default=ZERO),
        )
        .order_by()
    ):
        group = row(_llm_key(dimension, r[llm_field]))
        group.actions = r["actions"]
        group.action_measured_wh, group.action_estimated_wh = r["m"], r["e"]
    for key, day, wh, g in _cloud_rows(dimension, lo, hi):
        if dimension == "model":
            key = CLOUD_NO_MODEL
        group = row(key)
        group.cloud_estimated_wh += wh
        group.estimated_gco2e += g
        series = (key, "estimated")
        per_day[series][day] = per_day[series].get(day, ZERO) + wh

    labels = _labels(dimension, set(rows))
    for key, group in rows.items():
        group.label = labels.get(key, str(key)) if key != CLOUD_NO_MODEL else CLOUD_NO_MODEL
    ordered = sorted(rows.values(), key=lambda g: (-g.total_wh, g.label))
    total = EnergyRow(label="Total")
    for group in ordered:
        for name in (
            "measured_wh",
            "llm_estimated_wh",
            "cloud_estimated_wh",
            "measured_gco2e",
            "estimated_gco2e",
            "llm_calls",
            "actions",
            "action_measured_wh",
            "action_estimated_wh",
        ):
            setattr(total, name, getattr(total, name) + getattr(group, name))
    return EnergyReport(
        dimension=dimension,
        start=start,
        end=end,
        rows=ordered,
        total=total,
        chart=_chart(dimension, start, end, per_day, labels, ordered),
        missing=cloud_energy_missing(lo, hi),
        top_actions=_top_actions(usage),
    )


def _top_actions(usage: Any) -> list[ActionEnergy]:
    measured = Q(energy_source=EnergySource.MEASURED)
    rows = (
        usage.filter(action_id__isnull=False)
        .values("action_id")
        .annotate(
            calls=Count("pk"),
            m=Sum("energy_wh", filter=measured, default=ZERO),
            e=Sum("energy_wh", filter=~measured, default=ZERO),
            agent=F("agent_id"),
        )
        .order_by()
    )
    found = sorted(rows, key=lambda r: (-(r["m"] + r["e"]), r["action_id"]))[:TOP_ACTIONS]
    slugs = dict(Agent.objects.filter(pk__in={r["agent"] for r in found}).values_list("pk", "slug"))
    return [
        ActionEnergy(r["action_id"], slugs.get(r["agent"], "?"), r["calls"], r["m"], r["e"])
        for r in found
    ]


def _chart(
    dimension: str,
    start: date,
    end: date,
    per_day: dict[tuple[Any, str], dict[date, Decimal]],
    labels: dict[Any, str],
    ordered: list[EnergyRow],
) -> dict[str, Any]:
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    rank = {g.label: i for i, g in enumerate(ordered)}
    traces = []
    for (key, source), values in per_day.items():
        label = CLOUD_NO_MODEL if key == CLOUD_NO_MODEL else labels.get(key, str(key))
        # One colour per group, solid when measured and hatched when estimated: the theme's
        # six-colour cycle would give a group's two traces different colours.
        colour = PALETTE[rank.get(label, 0) % len(PALETTE)]
        trace: dict[str, Any] = {
            "type": "bar",
            "name": f"{label} · {source}",
            "legendgroup": label,
            "marker": {"color": colour},
            "x": [d.isoformat() for d in days],
            "y": [float(values.get(d, ZERO)) for d in days],
            "hovertemplate": f"{label} ({source})<br>%{{x}}: %{{y:,.3f}} Wh<extra></extra>",
        }
        if source == "estimated":
            trace["marker"]["pattern"] = {"shape": "/", "fillmode": "overlay", "size": 6}
        traces.append((rank.get(label, 0), source, trace))
    traces.sort(key=lambda t: (t[0], t[1]))
    return {
        "data": [t[2] for t in traces],
        "layout": {
            "title": {"text": f"Energy per day by {DIMENSIONS[dimension].lower()} (Wh)"},
            "barmode": "stack",
            "yaxis": {"title": {"text": "Wh / day"}},
            "xaxis": {"title": {"text": "day (UTC)"}, "type": "date"},
            "legend": {"orientation": "h", "y": -0.25},
            "height": 380,
        },
    }
