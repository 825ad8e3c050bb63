"""Reads for the reconciliation of estimated LLM cost (priced llm_call events) with the cost
Anthropic billed, per UTC day, workspace, model and API key (and so agent)."""

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from apps.costs.models import (
    AnthropicBilledCost,
    AnthropicBilledUsage,
    AnthropicCostPull,
    LlmUsage,
    ModelPrice,
)
from apps.costs.pricing import PriceBook, usage_cost
from apps.costs.tokens import TokenUsage
from apps.fleet.models import Agent

PROVIDER = "anthropic"
# Events often name a dated snapshot (claude-sonnet-4-5-20250929); the cost endpoint names the
# model as its models[] filter takes it (claude-sonnet-4-5). Both are compared without the date.
_SNAPSHOT_DATE = re.compile(r"-\d{8}$")
PCT_QUANTUM = Decimal("0.1")
# Differences below a cent are rounding, never flagged.
NOISE_USD = Decimal("0.01")


def model_family(model: str) -> str:
    return _SNAPSHOT_DATE.sub("", model)


def variance_flagged(variance: Decimal, pct: Decimal | None) -> bool:
    """A difference of a cent or more that is at least the threshold share of the bill, or
    where nothing was billed."""
    if abs(variance) < NOISE_USD:
        return False
    return pct is None or abs(pct) >= Decimal(settings.ANTHROPIC_RECON_VARIANCE_PCT)


class KeyState:
    """How a row's API key relates to the fleet."""

    MAPPED = "mapped"  # the key is an agent's
    UNMAPPED = "unmapped"  # billed on a key no agent has
    NO_KEY = "no_key"  # billed usage no API key authenticated (Console, claude.ai)
    AGENT_WITHOUT_KEY = "agent_without_key"  # estimated for agents with no key set


class _Variance:
    """Billed against estimated, alike for a row and for the totals."""

    billed: Decimal
    estimated: Decimal

    @property
    def variance(self) -> Decimal:
        """Billed minus estimated: positive when Anthropic billed more than the events say."""
        return self.billed - self.estimated

    @property
    def variance_pct(self) -> Decimal | None:
        if not self.billed:
            return None
        return (self.variance / self.billed * 100).quantize(PCT_QUANTUM, ROUND_HALF_EVEN)

    @property
    def flagged(self) -> bool:
        return variance_flagged(self.variance, self.variance_pct)


@dataclass
class ReconRow(_Variance):
    day: date
    workspace_id: str
    model: str
    api_key_id: str
    key_state: str
    agents: list[str] = field(default_factory=list)
    estimated: Decimal = Decimal(0)
    calls: int = 0
    unpriced_calls: int = 0
    billed: Decimal = Decimal(0)
    billed_non_token: Decimal = Decimal(0)
    has_billed: bool = False
    # The bill's own token counts priced with our table (None: no usage reported).
    usage_priced: Decimal | None = None
    usage_unpriced: bool = False


@dataclass
class Totals(_Variance):
    estimated: Decimal = Decimal(0)
    billed: Decimal = Decimal(0)
    billed_non_token: Decimal = Decimal(0)
    usage_priced: Decimal = Decimal(0)
    usage_unpriced: bool = False
    calls: int = 0
    unpriced_calls: int = 0


@dataclass
class Reconciliation:
    since: date
    until: date  # inclusive, as people read a range
    rows: list[ReconRow]
    totals: Totals
    chart: dict[str, Any]
    workspaces: list[str]
    models: list[str]
    agents: list[str]
    unmapped_keys: list[dict[str, Any]]
    billed_currencies: list[str]


def _day_bounds(since: date, until: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(since, time.min, tzinfo=UTC),
        datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC),
    )


def reconciliation(
    *,
    since: date,
    until: date,
    workspace: str = "",
    model: str = "",
    agent: str = "",
    tokens_only: bool = False,
) -> Reconciliation:
    """Every (day, workspace, model, API key) cell with estimated or billed cost in the
    inclusive UTC day range; seven queries whatever the range. Filters narrow the rows; the
    chart and totals follow the filters. `tokens_only` leaves out billed web search, code
    execution and session time, which llm_call estimates priced from tokens cannot contain."""
    start, end = _day_bounds(since, until)
    agents = {
        a["pk"]: (a["slug"], a["anthropic_api_key_id"])
        for a in Agent.objects.values("pk", "slug", "anthropic_api_key_id")
    }
    agents_by_key: dict[str, list[str]] = defaultdict(list)
    for slug, key in agents.values():
        if key:
            agents_by_key[key].append(slug)
    # A key belongs to one workspace: learnt from the bill, since events do not name it.
    workspace_of_key = dict(
        AnthropicBilledCost.objects.exclude(api_key_id="")
        .order_by()  # the default ordering would add columns to the DISTINCT
        .values_list("api_key_id", "workspace_id")
        .distinct()
    )

    cells: dict[tuple[Any, ...], ReconRow] = {}

    def cell(day: date, ws: str, mdl: str, key: str, state: str) -> ReconRow:
        k = (day, ws, mdl, key, state)
        row = cells.get(k)
        if row is None:
            row = cells[k] = ReconRow(
                day=day, workspace_id=ws, model=mdl, api_key_id=key, key_state=state
            )
        return row

    def billed_cell(day: date, ws: str, mdl: str, key: str) -> ReconRow:
        """The cell of a row of the bill, by whether its API key is an agent's."""
        if not key:
            state = KeyState.NO_KEY
        elif key in agents_by_key:
            state = KeyState.MAPPED
        else:
            state = KeyState.UNMAPPED
        row = cell(day, ws, model_family(mdl), key, state)
        if state == KeyState.MAPPED:
            row.agents = sorted(agents_by_key[key])
        return row

    billed_rows = AnthropicBilledCost.objects.filter(day__gte=since, day__lte=until, currency="USD")
    if tokens_only:
        billed_rows = billed_rows.filter(cost_type="tokens")
    billed = billed_rows.values("day", "workspace_id", "model", "api_key_id").annotate(
        billed_amount=Sum("amount"),
        non_token=Sum("amount", filter=~Q(cost_type="tokens")),
    )
    for b in billed:
        row = billed_cell(b["day"], b["workspace_id"], b["model"], b["api_key_id"])
        row.billed += b["billed_amount"]
        row.billed_non_token += b["non_token"] or 0
        row.has_billed = True

    usage = AnthropicBilledUsage.objects.filter(day__gte=since, day__lte=until)
    if usage:
        book = PriceBook(ModelPrice.objects.filter(provider=PROVIDER, effective_from__lt=end))
    for u in usage:
        row = billed_cell(u.day, u.workspace_id, u.model, u.api_key_id)
        # The price in force when the day began (events are priced at their own moment).
        price = book.price_for(PROVIDER, u.model, datetime.combine(u.day, time.min, tzinfo=UTC))
        if price is None:
            row.usage_unpriced = True
            row.usage_priced = row.usage_priced or Decimal(0)
            continue
        tokens = TokenUsage(
            input=u.uncached_input_tokens,
            output=u.output_tokens,
            cache_write_5m=u.cache_write_5m_tokens,
            cache_write_1h=u.cache_write_1h_tokens,
            cache_read=u.cache_read_tokens,
            batch=u.service_tier == "batch",
        )
        row.usage_priced = (row.usage_priced or Decimal(0)) + usage_cost(tokens, price)

    estimated = (
        LlmUsage.objects.in_window(start, end)
        .filter(provider=PROVIDER)
        .values("agent_id", "model", day=TruncDate("ts", tzinfo=UTC))
        .annotate(
            cost=Sum("cost_usd"),
            calls=Count("pk"),
            unpriced=Count("pk", filter=Q(cost_usd__isnull=True)),
        )
    )
    for e in estimated:
        slug, key = agents.get(e["agent_id"], (f"agent #{e['agent_id']}", ""))
        if key:
            row = cell(
                e["day"],
                workspace_of_key.get(key, ""),
                model_family(e["model"]),
                key,
                KeyState.MAPPED,
            )
            row.agents = sorted(agents_by_key[key])
        else:
            row = cell(e["day"], "", model_family(e["model"]), "", KeyState.AGENT_WITHOUT_KEY)
            if slug not in row.agents:
                row.agents = sorted([*row.agents, slug])
        row.estimated += e["cost"] or 0
        row.calls += e["calls"]
        row.unpriced_calls += e["unpriced"]

    all_rows = sorted(
        cells.values(),
        key=lambda r: (r.day, r.workspace_id, r.model, r.key_state, r.api_key_id),
    )
    workspaces = sorted({r.workspace_id for r in all_rows if r.workspace_id})
    models = sorted({r.model for r in all_rows if r.model})
    agent_slugs = sorted({a for r in all_rows for a in r.agents})
    rows = [
        r
        for r in all_rows
        if (not workspace or r.workspace_id == workspace)
        and (not model or r.model == model)
        and (not agent or agent in r.agents)
    ]
    totals = Totals()
    for r in rows:
        totals.estimated += r.estimated
        totals.billed += r.billed
        totals.billed_non_token += r.billed_non_token
        totals.usage_priced += r.usage_priced or 0
        totals.usage_unpriced = totals.usage_unpriced or r.usage_unpriced
        totals.calls += r.calls
        totals.unpriced_calls += r.unpriced_calls
    unmapped: dict[str, dict[str, Any]] = {}
    for r in all_rows:
        if r.key_state == KeyState.UNMAPPED:
            entry = unmapped.setdefault(
                r.api_key_id,
                {"api_key_id": r.api_key_id, "workspace_id": r.workspace_id, "billed": Decimal(0)},
            )
            entry["billed"] += r.billed
    currencies = sorted(
        set(
            AnthropicBilledCost.objects.filter(day__gte=since, day__lte=until)
            .exclude(currency="USD")
            .order_by()
            .values_list("currency", flat=True)
        )
    )
    return Reconciliation(
        since=since,
        until=until,
        rows=rows,
        totals=totals,
        chart=recon_chart(rows, since=since, until=until),
        workspaces=workspaces,
        models=models,
        agents=agent_slugs,
        unmapped_keys=sorted(unmapped.values(), key=lambda u: -u["billed"]),
        billed_currencies=currencies,
    )


def recon_chart(rows: list[ReconRow], *, since: date, until: date) -> dict[str, Any]:
    """Estimated and billed USD per day (every day of the range, zero where nothing)."""
    estimated: dict[date, Decimal] = defaultdict(Decimal)
    billed: dict[date, Decimal] = defaultdict(Decimal)
    for r in rows:
        estimated[r.day] += r.estimated
        billed[r.day] += r.billed
    days: list[date] = []
    day = since
    while day <= until:
        days.append(day)
        day += timedelta(days=1)
    xs = [d.isoformat() for d in days]
    xaxis: dict[str, Any] = {"title": {"text": "day (UTC)"}, "type": "date", "tickformat": "%b %d"}
    if len(days) <= 31:
        xaxis["dtick"] = 86_400_000  # one tick a day; Plotly would otherwise tick hours
    return {
        "data": [
            {
                "type": "bar",
                "name": "billed (Admin API)",
                "x": xs,
                "y": [float(billed[d]) for d in days],
                "hovertemplate": "%{x}<br>billed $%{y:,.4f}<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "estimated (llm_call events)",
                "x": xs,
                "y": [float(estimated[d]) for d in days],
                "hovertemplate": "%{x}<br>estimated $%{y:,.4f}<extra></extra>",
            },
        ],
        "layout": {
            "title": {"text": "Estimated vs billed LLM cost per UTC day"},
            "xaxis": xaxis,
            "yaxis": {"title": {"text": "USD"}, "rangemode": "tozero"},
            "legend": {"orientation": "h", "y": -0.25},
        },
    }


def pull_latest() -> AnthropicCostPull | None:
    return AnthropicCostPull.objects.select_related("requested_by").first()
