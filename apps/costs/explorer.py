"""Reads for the cost explorer: every cost opsdash knows, per UTC day, in one shape.

Four drivers feed it:
- inference: LLM calls priced from the price table (or as the agent reported them);
- cloud: imported bills as allocated to teams and agents (EffectiveCost or BilledCost);
- logging: audit-log bytes stored x the log-storage rate, accrued per day;
- tool calls: calls per tool x the tool's rate.
Billed LLM cost from a provider's cost API reconciles the inference estimates and is never
added here.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from apps.audit.models import EventDailyCount
from apps.billing.models import CostAllocation
from apps.costs.drivers import driver_rates, log_storage_day_cost
from apps.costs.models import CostSource, LlmUsage, ToolCallDailyCount
from apps.fleet.models import Agent

INFERENCE = "inference"
CLOUD = "cloud"
LOGGING = "logging"
TOOL_CALLS = "tool calls"
DRIVERS = (INFERENCE, CLOUD, LOGGING, TOOL_CALLS)
DIMENSIONS = ("driver", "team", "agent", "provider", "service", "model")
UNALLOCATED = "(unallocated)"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class CostCell:
    """The cost of one driver on one UTC day for one combination of the dimensions."""

    day: date
    driver: str
    team: str
    agent: str
    provider: str
    service: str
    model: str
    currency: str
    cost: Decimal

    def value_of(self, dimension: str) -> str:
        return str(getattr(self, dimension)) or "—"


@dataclass(frozen=True)
class ExplorerQuery:
    start: date  # first UTC day, inclusive
    end: date  # last UTC day, inclusive
    dimension: str = "driver"
    currency: str = "USD"
    cloud_cost: str = "effective"  # or "billed"
    teams: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    drivers: tuple[str, ...] = ()

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_before(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def filters_keep(self, cell: CostCell) -> bool:
        """The filters other than the currency."""
        return (
            (not self.teams or cell.team in self.teams)
            and (not self.agents or cell.agent in self.agents)
            and (not self.providers or cell.provider in self.providers)
            and (not self.drivers or cell.driver in self.drivers)
        )


@dataclass
class Gaps:
    """What the figures cannot include, said out loud instead of counted as zero."""

    unpriced_llm_calls: int = 0
    unpriced_tool_calls: dict[str, int] = field(default_factory=dict)
    log_storage_unrated_days: int = 0
    other_currencies: dict[str, Decimal] = field(default_factory=dict)


def _inference_cells(q: ExplorerQuery, gaps: Gaps) -> Iterator[CostCell]:
    rows = (
        LlmUsage.objects.in_window(q.start_at, q.end_before)
        .annotate(day=TruncDate("ts"))
        .values("day", "team__slug", "agent__slug", "provider", "model")
        .annotate(
            cost=Sum("cost_usd"),
            unpriced=Count("pk", filter=Q(cost_source=CostSource.UNPRICED)),
        )
        .order_by()
    )
    for row in rows:
        if row["unpriced"] and (not q.agents or row["agent__slug"] in q.agents):
            gaps.unpriced_llm_calls += row["unpriced"]
        if row["cost"] is None:
            continue
        yield CostCell(
            day=row["day"],
            driver=INFERENCE,
            team=row["team__slug"],
            agent=row["agent__slug"],
            provider=row["provider"],
            service="LLM API",
            model=row["model"],
            currency="USD",
            cost=row["cost"],
        )


def _cloud_cells(q: ExplorerQuery) -> Iterator[CostCell]:
    amount = "billed_cost" if q.cloud_cost == "billed" else "effective_cost"
    rows = (
        CostAllocation.objects.filter(
            charge_period_start__gte=q.start_at, charge_period_start__lt=q.end_before
        )
        .annotate(day=TruncDate("charge_period_start"))
        .values("day", "team__slug", "agent__slug", "provider", "service_name", "billing_currency")
        .annotate(cost=Sum(amount))
        .order_by()
    )
    for row in rows:
        yield CostCell(
            day=row["day"],
            driver=CLOUD,
            team=row["team__slug"] or UNALLOCATED,
            agent=row["agent__slug"] or "",
            provider=row["provider"],
            service=row["service_name"],
            model="",
            currency=row["billing_currency"],
            cost=row["cost"],
        )


def _agent_teams() -> dict[int, tuple[str, str]]:
    return {a.pk: (a.slug, a.team.slug) for a in Agent.objects.select_related("team")}


def _logging_cells(q: ExplorerQuery, gaps: Gaps) -> Iterator[CostCell]:
    rates = driver_rates()
    # Bytes stored on a day are everything stored up to it: one pass over the per-day counts,
    # which hold one row per agent, day and event type.
    per_day: dict[int, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for row in (
        EventDailyCount.objects.filter(day__lte=q.end)
        .values("agent_id", "day")
        .annotate(b=Sum("bytes"))
        .order_by()
    ):
        per_day[row["agent_id"]][row["day"]] += row["b"] or 0
    agents = _agent_teams()
    for day in q.days():
        if rates.log_storage_rate(day) is None:
            gaps.log_storage_unrated_days += 1
    for agent_id, days in per_day.items():
        stored_before = sum(b for d, b in days.items() if d < q.start)
        agent_slug, team_slug = agents.get(agent_id, (str(agent_id), ""))
        for day in q.days():
            stored_before += days.get(day, 0)
            rate = rates.log_storage_rate(day)
            if rate is None or not stored_before:
                continue
            yield CostCell(
                day=day,
                driver=LOGGING,
                team=team_slug,
                agent=agent_slug,
                provider="opsdash",
                service="Audit-log storage",
                model="",
                currency="USD",
                cost=log_storage_day_cost(stored_before, rate, day),
            )


def _tool_cells(q: ExplorerQuery, gaps: Gaps) -> Iterator[CostCell]:
    rates = driver_rates()
    agents = _agent_teams()
    for count in ToolCallDailyCount.objects.filter(day__gte=q.start, day__lte=q.end):
        agent_slug, team_slug = agents.get(count.agent_id, (str(count.agent_id), ""))
        cost = rates.tool_calls_cost(
            count.tool,
            count.day,
            calls=count.calls,
            reported_calls=count.reported_calls,
            reported_usd=count.reported_usd,
        )
        if cost.unpriced and (not q.agents or agent_slug in q.agents):
            gaps.unpriced_tool_calls[count.tool] = (
                gaps.unpriced_tool_calls.get(count.tool, 0) + cost.unpriced
            )
        if not cost.priced:
            continue
        yield CostCell(
            day=count.day,
            driver=TOOL_CALLS,
            team=team_slug,
            agent=agent_slug,
            provider="tools",
            service=count.tool,
            model="",
            currency="USD",
            cost=cost.usd,
        )


def cost_cells(q: ExplorerQuery) -> tuple[list[CostCell], Gaps]:
    """Every cost cell of the query's days that passes its filters, and what is missing."""
    gaps = Gaps()
    sources: list[Iterable[CostCell]] = []
    wanted = set(q.drivers or DRIVERS)
    if INFERENCE in wanted:
        sources.append(_inference_cells(q, gaps))
    if CLOUD in wanted:
        sources.append(_cloud_cells(q))
    if LOGGING in wanted:
        sources.append(_logging_cells(q, gaps))
    if TOOL_CALLS in wanted:
        sources.append(_tool_cells(q, gaps))
    kept: list[CostCell] = []
    for source in sources:
        for cell in source:
            if not q.filters_keep(cell):
                continue
            if cell.currency == q.currency:
                kept.append(cell)
            else:
                gaps.other_currencies[cell.currency] = (
                    gaps.other_currencies.get(cell.currency, Decimal(0)) + cell.cost
                )
    return kept, gaps


@dataclass(frozen=True)
class SeriesRow:
    value: str
    total: Decimal
    share: Decimal  # of the grand total, 0 to 100
    per_day: dict[date, Decimal]
    per_driver: dict[str, Decimal]

    @property
    def driver_costs(self) -> list[Decimal | None]:
        """The row's cost per driver, in the order of DRIVERS (None: that driver has none)."""
        return [self.per_driver.get(d) for d in DRIVERS]


@dataclass(frozen=True)
class Explorer:
    query: ExplorerQuery
    rows: list[SeriesRow]  # largest total first
    total: Decimal
    per_driver: dict[str, Decimal]
    gaps: Gaps


def cost_explorer(q: ExplorerQuery) -> Explorer:
    cells, gaps = cost_cells(q)
    per_value: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    value_drivers: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    per_driver: dict[str, Decimal] = {d: Decimal(0) for d in DRIVERS}
    for cell in cells:
        value = cell.value_of(q.dimension)
        per_value[value][cell.day] += cell.cost
        value_drivers[value][cell.driver] += cell.cost
        per_driver[cell.driver] += cell.cost
    total = sum(per_driver.values(), Decimal(0))
    rows = [
        SeriesRow(
            value=value,
            total=sum(days.values(), Decimal(0)),
            share=(sum(days.values(), Decimal(0)) / total * 100) if total else Decimal(0),
            per_day=dict(days),
            per_driver=dict(value_drivers[value]),
        )
        for value, days in per_value.items()
    ]
    rows.sort(key=lambda r: (-r.total, r.value))
    return Explorer(query=q, rows=rows, total=total, per_driver=per_driver, gaps=gaps)


# Five series and the rest as one: the six colours of the chart palette.
CHART_SERIES = 5


def explorer_chart(explorer: Explorer) -> dict[str, Any]:
    """A stacked area per value of the dimension (the largest five, the rest as one).

    Plotly needs numbers, so the chart alone carries floats rounded to the cent; the table
    and the CSV carry the Decimal figures."""
    days = explorer.query.days()
    shown = explorer.rows[:CHART_SERIES]
    rest = explorer.rows[CHART_SERIES:]
    series = [(row.value, row.per_day) for row in shown]
    if rest:
        merged: dict[date, Decimal] = defaultdict(Decimal)
        for row in rest:
            for day, cost in row.per_day.items():
                merged[day] += cost
        series.append((f"{len(rest)} others", merged))
    currency = explorer.query.currency
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "stackgroup": "cost",
            "name": name,
            "x": [d.isoformat() for d in days],
            "y": [float(per_day.get(d, Decimal(0)).quantize(CENT)) for d in days],
            "hovertemplate": f"%{{x}}<br>{name}: %{{y:,.2f}} {currency}<extra></extra>",
        }
        for name, per_day in series
    ]
    return {
        "data": data,
        "layout": {
            "title": f"Cost per day by {explorer.query.dimension} ({currency})",
            "yaxis": {"title": currency, "rangemode": "tozero"},
            "xaxis": {"type": "date"},
            "legend": {"orientation": "h"},
            "height": 360,
        },
    }


@dataclass(frozen=True)
class ExplorerChoices:
    teams: list[str]
    agents: list[str]
    providers: list[str]
    currencies: list[str]


def explorer_choices() -> ExplorerChoices:
    """The values the filters offer (small tables, and a DISTINCT served by an index)."""
    from apps.fleet.models import Team

    providers = set(LlmUsage.objects.values_list("provider", flat=True).distinct().order_by())
    providers |= set(
        CostAllocation.objects.values_list("provider", flat=True).distinct().order_by()
    )
    currencies = {"USD"} | set(
        CostAllocation.objects.values_list("billing_currency", flat=True).distinct().order_by()
    )
    return ExplorerChoices(
        teams=[*Team.objects.order_by("slug").values_list("slug", flat=True), UNALLOCATED],
        agents=list(Agent.objects.order_by("slug").values_list("slug", flat=True)),
        providers=sorted(providers | {"opsdash", "tools"}),
        currencies=sorted(currencies),
    )
