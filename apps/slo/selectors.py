"""Reads behind the SLO pages: the tile list, one SLO's charts and worst actions, an agent's
scorecard. Every figure shown is formatted here, so templates only place strings and tests
assert exactly what a person reads."""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.db.models import Case, F, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncHour
from django.http import QueryDict
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from apps.actions.models import Action, action_path
from apps.fleet.models import Agent, Team
from apps.slo.models import (
    THRESHOLD_KINDS,
    SliFact,
    SliKind,
    Slo,
    SloAlert,
    SloRollup,
    SloScope,
    SloStatus,
    WindowKind,
)
from apps.slo.rollups import slo_fact_filter, slo_fact_good
from apps.slo.windows import ALERT_RULES, BURN_WINDOWS, burn_factor, calendar_month_bounds

logger = logging.getLogger(__name__)

# Typographic signs people read on the pages (escaped: ruff flags them as confusable).
TIMES = "\u00d7"  # multiplication sign, as in 4.20x burn
MINUS = "\u2212"  # minus sign, as in -120.0 % budget

STATES = ("critical", "warning", "ok", "no_data")
STATE_LABELS = {"critical": "critical", "warning": "warning", "ok": "ok", "no_data": "no data"}
# Worst first: a page alert, a ticket alert, then the healthy ones, then those with nothing to say.
STATE_RANK = Case(
    *[When(status__state=state, then=Value(rank)) for rank, state in enumerate(STATES)],
    default=Value(len(STATES) - 1),  # no status row yet: not evaluated, so no data
    output_field=IntegerField(),
)
THRESHOLD_UNITS = {
    SliKind.TIME_TO_PROPOSE: "s",
    SliKind.COST_PER_ACTION: "USD",
    SliKind.ENERGY_PER_ACTION: "Wh",
}
WORST_ACTIONS_LIMIT = 20
ALERT_HISTORY_LIMIT = 50
AUTONOMY_HISTORY_LIMIT = 50
# The SLI chart aims at about this many points whatever the window (7 d: hourly; 28 d: 6 h).
SLI_CHART_POINTS = 120
BUCKET_HOURS = (1, 2, 3, 6, 12, 24)


# ---------------------------------------------------------------- formatting


def pct(ratio: Decimal | float | None, places: int = 2) -> str:
    """0.93103 → '93.10 %'; None → '—'."""
    if ratio is None:
        return "—"
    value = Decimal(str(ratio)) * 100
    text = f"{value:.{places}f}"
    return f"{MINUS}{text[1:]} %" if text.startswith("-") else f"{text} %"


def objective_text(objective: Decimal) -> str:
    """0.95 → '95 %', 0.999 → '99.9 %': as many decimals as the objective has."""
    value = (Decimal(objective) * 100).normalize()
    text = format(value, "f")
    return f"{text} %"


def burn_text(rate: Decimal | float | None) -> str:
    if rate is None:
        return "—"
    return f"{Decimal(str(rate)):.2f}{TIMES}"


def threshold_text(slo: Slo) -> str:
    if slo.threshold is None or slo.sli not in THRESHOLD_KINDS:
        return ""
    value = Decimal(slo.threshold).normalize()
    return f"{format(value, 'f')} {THRESHOLD_UNITS[SliKind(slo.sli)]}"


def window_text(slo: Slo) -> str:
    if slo.window_kind == WindowKind.CALENDAR_MONTH:
        return f"calendar month ({slo.time_zone})"
    return f"rolling {slo.window_days} d"


def scope_text(slo: Slo) -> str:
    """'agent cost-sweeper', 'team payments', 'all agents', plus the version of a canary."""
    if slo.scope == SloScope.AGENT and slo.agent is not None:
        text = f"agent {slo.agent.slug}"
    elif slo.scope == SloScope.TEAM and slo.team is not None:
        text = f"team {slo.team.slug}"
    else:
        text = "all agents"
    if slo.agent_version:
        text += f" · version {slo.agent_version}"
    return text


def sli_description(slo: Slo) -> str:
    """What the SLI counts as good, in words, with the SLO's threshold."""
    threshold = threshold_text(slo)
    return {
        SliKind.TIME_TO_PROPOSE: f"proposals made within {threshold} of the first alert",
        SliKind.ACCEPTANCE: "decided proposals that were approved",
        SliKind.ROLLBACK: "succeeded executions not rolled back within "
        f"{_duration_text(slo.rollback_window)}",
        SliKind.ACCURACY: "judged actions that were correct",
        SliKind.RECALL: "closed incidents where an agent proposed the correct action",
        SliKind.COST_PER_ACTION: f"actions costing at most {threshold}",
        SliKind.ENERGY_PER_ACTION: f"actions using at most {threshold}",
        SliKind.PROMQL: "good ÷ total PromQL queries",
    }.get(SliKind(slo.sli), slo.get_sli_display())


def _duration_text(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


# ---------------------------------------------------------------- sparkline

# viewBox units: integer coordinates are cheap to format for 200 tiles x 60 points.
SPARK_W, SPARK_H, SPARK_PAD = 1200, 280, 20


@dataclass(frozen=True)
class Sparkline:
    """An inline SVG drawn server side: polylines (one per run of points with data) and the
    objective's dashed line, in a 1200 x 280 viewBox stretched over the tile."""

    lines: list[str]
    objective_y: int
    label: str

    @property
    def svg(self) -> SafeString:
        # Only numbers and our own label go in: nothing to escape, and one template variable
        # per tile instead of a loop (the list renders 200 of these).
        polylines = "".join(f'<polyline points="{line}"/>' for line in self.lines)
        return mark_safe(  # noqa: S308
            f'<svg class="spark" viewBox="0 0 {SPARK_W} {SPARK_H}" preserveAspectRatio="none" '
            f'role="img" aria-label="{self.label}"><line class="spark-objective" x1="0" '
            f'x2="{SPARK_W}" y1="{self.objective_y}" y2="{self.objective_y}"/>{polylines}</svg>'
        )


def sparkline(points: list[Any], objective: Decimal) -> Sparkline | None:
    """SloStatus.sparkline ([[iso minute, ratio or null], ...]) as SVG coordinates.

    Why SVG and not Plotly: a list of 200 tiles would mean 200 Plotly instances (~100 ms of
    script each and a WebGL/SVG tree per tile); a few hundred bytes of static SVG per tile cost
    nothing to draw, need no script and print fine. The y axis runs from just under the lower of
    the objective and the worst point up to 100 %, so a dip below the objective is visible."""
    values = [p[1] for p in points if isinstance(p, list | tuple) and len(p) == 2]
    known = [float(v) for v in values if v is not None]
    if not known:
        return None
    target = float(objective)
    low = min(min(known), target)
    low = max(0.0, low - (1.0 - low) * 0.15) if low < 1.0 else 0.9
    top = SPARK_H - SPARK_PAD + 0.5  # + 0.5: int() below rounds to the nearest unit
    scale = (SPARK_H - 2 * SPARK_PAD) / ((1.0 - low) or 1.0)
    step = SPARK_W / max(len(values) - 1, 1)
    runs: list[list[tuple[int, int]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append((int(i * step + 0.5), int(top - (float(v) - low) * scale)))
    lines = []
    for run in runs:
        if len(run) == 1:  # a lone point draws nothing as a polyline: a short flat stroke
            x, at = run[0]
            run = [(max(x - 15, 0), at), (min(x + 15, SPARK_W), at)]
        if run:
            lines.append(" ".join([f"{x},{at}" for x, at in run]))
    return Sparkline(
        lines=lines,
        objective_y=int(top - (target - low) * scale),
        label=f"SLI over the last {len(values)} points, from {pct(min(known))} to {pct(max(known))}",
    )


# ---------------------------------------------------------------- the list


@dataclass(frozen=True)
class SloFilters:
    """The list's filters from GET parameters; unknown values are ignored, never a 500."""

    team: str = ""
    agent: str = ""
    sli: str = ""

    @classmethod
    def from_params(cls, params: QueryDict) -> "SloFilters":
        def text(name: str) -> str:
            return params.get(name, "").strip()[:64]

        sli = text("sli")
        return cls(team=text("team"), agent=text("agent"), sli=sli if sli in SliKind.values else "")

    def apply(self, qs: QuerySet[Slo]) -> QuerySet[Slo]:
        if self.team:
            # The team's own SLOs and those of its agents: what the team answers for.
            qs = qs.filter(Q(team__slug=self.team) | Q(agent__team__slug=self.team))
        if self.agent:
            qs = qs.filter(agent__slug=self.agent)
        if self.sli:
            qs = qs.filter(sli=self.sli)
        return qs

    def query(self) -> str:
        out = QueryDict(mutable=True)
        for key in ("team", "agent", "sli"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out.urlencode()

    @property
    def active(self) -> bool:
        return bool(self.team or self.agent or self.sli)


@dataclass
class SloTile:
    """One SLO as a tile (and a scorecard column) shows it."""

    slo: Slo
    state: str
    state_label: str
    sli: str
    objective: str
    budget: str
    budget_exhausted: bool
    below_objective: bool  # the SLI now is under the objective (False without data)
    burn: str
    scope: str
    window: str
    description: str
    evaluated_at: datetime | None
    spark: Sparkline | None
    href: str = ""
    marker: str = ""  # scorecard: "agent", "team" or "global"

    @property
    def badge(self) -> str:
        """The badge class of the state (critical is the only filled badge)."""
        return {"critical": "critical", "warning": "warn", "ok": "ok"}.get(self.state, "muted")


def _status_of(slo: Slo) -> SloStatus | None:
    try:
        return slo.status
    except SloStatus.DoesNotExist:
        return None


def slo_tile(slo: Slo) -> SloTile:
    status = _status_of(slo)
    state = status.state if status is not None and status.state in STATES else "no_data"
    budget = status.budget_remaining if status is not None else None
    return SloTile(
        slo=slo,
        state=state,
        state_label=STATE_LABELS[state],
        sli=pct(status.sli) if status is not None else "—",
        objective=objective_text(slo.objective),
        budget=pct(budget, 1),
        budget_exhausted=budget is not None and budget <= 0,
        below_objective=status is not None
        and status.sli is not None
        and status.sli < slo.objective,
        burn=burn_text(status.worst_burn_rate) if status is not None else "—",
        scope=scope_text(slo),
        window=window_text(slo),
        description=sli_description(slo),
        evaluated_at=status.evaluated_at if status is not None else None,
        spark=sparkline(status.sparkline, slo.objective) if status is not None else None,
        href=f"/slos/{slo.slug}/",
    )


# What a tile reads, and nothing else: the list loads 200 of these, and the status's burn
# rates, the agent's JSON columns and the SLO's queries would only be decoded to be dropped.
TILE_FIELDS = (
    "slug",
    "name",
    "sli",
    "scope",
    "agent_version",
    "objective",
    "window_kind",
    "window_days",
    "time_zone",
    "threshold",
    "rollback_window",
    "team__slug",
    "agent__slug",
    "status__state",
    "status__sli",
    "status__budget_remaining",
    "status__worst_burn_rate",
    "status__evaluated_at",
    "status__sparkline",
)


def slos_with_status() -> QuerySet[Slo]:
    """SLOs joined to their status, team and agent in one query (status may be missing)."""
    return Slo.objects.select_related("status", "team", "agent").only(*TILE_FIELDS)


def slos_worst_first(qs: QuerySet[Slo]) -> QuerySet[Slo]:
    return qs.order_by(STATE_RANK.asc(), F("status__budget_remaining").asc(nulls_last=True), "slug")


def slo_list_page(*, params: QueryDict) -> dict[str, Any]:
    """The tiles, worst first, with the filters: one query for the tiles, two for the selects."""
    filters = SloFilters.from_params(params)
    tiles = [slo_tile(slo) for slo in slos_worst_first(filters.apply(slos_with_status()))]
    counts = {state: 0 for state in STATES}
    for tile in tiles:
        counts[tile.state] += 1
    return {
        "tiles": tiles,
        "counts": [(state, STATE_LABELS[state], counts[state]) for state in STATES],
        "filters": filters,
        "filter_query": filters.query(),
        "options": {
            "teams": list(Team.objects.order_by("slug").values_list("slug", flat=True)),
            "agents": list(Agent.objects.order_by("slug").values_list("slug", flat=True)),
            "slis": SliKind.choices,
        },
    }


# ---------------------------------------------------------------- one SLO


def slo_get(slug: str) -> Slo:
    return Slo.objects.select_related("status", "team", "agent", "agent__team").get(slug=slug)


def period_of(slo: Slo, now: datetime) -> tuple[datetime, datetime]:
    """The SLO's window as the status computes it, so the charts and the status agree."""
    from apps.slo.evaluate import slo_window_bounds

    return slo_window_bounds(slo, now)


def period_end(slo: Slo, start: datetime, now: datetime) -> datetime:
    """Where the period's budget is meant to run out: a rolling window ends now, a calendar
    month at its last instant."""
    if slo.window_kind == WindowKind.CALENDAR_MONTH:
        return calendar_month_bounds(start + timedelta(hours=12), slo.time_zone)[1]
    return now


def _hourly(slo: Slo, start: datetime, end: datetime) -> list[tuple[datetime, int, int]]:
    """(hour, good, total) for the window: one grouped query (TruncHour works on PostgreSQL
    and SQLite alike); coarser buckets are folded from these in Python."""
    rows = (
        SloRollup.objects.filter(slo=slo, minute__gte=start, minute__lt=end)
        .annotate(hour=TruncHour("minute"))
        .values("hour")
        .annotate(good_sum=Sum("good"), total_sum=Sum("total"))
        .order_by("hour")
    )
    return [(r["hour"], int(r["good_sum"] or 0), int(r["total_sum"] or 0)) for r in rows]


def bucket_hours(start: datetime, end: datetime) -> int:
    hours = max((end - start).total_seconds() / 3600, 1)
    for size in BUCKET_HOURS:
        if hours / size <= SLI_CHART_POINTS:
            return size
    return BUCKET_HOURS[-1]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def sli_chart(
    slo: Slo, hourly: list[tuple[datetime, int, int]], start: datetime, end: datetime
) -> dict[str, Any]:
    """SLI per bucket (good ÷ total of the bucket; no point where nothing was counted) against
    the objective line."""
    size = bucket_hours(start, end)
    first = _floor_hour(start)
    sums: dict[datetime, list[int]] = {}
    for hour, good, total in hourly:
        index = int((_floor_hour(hour) - first).total_seconds() // (3600 * size))
        slot = sums.setdefault(first + timedelta(hours=index * size), [0, 0])
        slot[0] += good
        slot[1] += total
    xs: list[str] = []
    ys: list[float | None] = []
    texts: list[str] = []
    moment = first
    while moment < end:
        good, total = sums.get(moment, [0, 0])
        xs.append(_iso(moment))
        ys.append(round(good / total * 100, 4) if total else None)
        texts.append(f"{good} good of {total}")
        moment += timedelta(hours=size)
    objective = float(slo.objective * 100)
    every = f"{size} h" if size < 24 else "day"
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "SLI",
                "x": xs,
                "y": ys,
                "text": texts,
                "connectgaps": False,
                "hovertemplate": "%{x}<br>%{y:.2f} % (%{text})<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"objective {objective_text(slo.objective)}",
                "x": [_iso(first), _iso(end)],
                "y": [objective, objective],
                "line": {"dash": "dash"},
                "hoverinfo": "skip",
            },
        ],
        "layout": {
            "title": {"text": f"SLI per {every} against the objective"},
            "xaxis": {"title": {"text": "time (UTC)"}, "type": "date"},
            "yaxis": {"title": {"text": "good events (%)"}, "rangemode": "normal"},
            "legend": {"orientation": "h", "y": -0.25},
        },
    }


def burndown_chart(
    slo: Slo,
    hourly: list[tuple[datetime, int, int]],
    start: datetime,
    now: datetime,
    end: datetime,
) -> dict[str, Any]:
    """Error budget left over the window, hour by hour, with the ideal straight line.

    The budget, in events, is (1 - objective) * all events of the window so far, so the last
    point equals SloStatus.budget_remaining: 1 - (bad / total) / (1 - objective)."""
    total_all = sum(total for _, _, total in hourly)
    allowed = (Decimal(1) - Decimal(slo.objective)) * total_all
    xs: list[str] = [_iso(start)]
    ys: list[float | None] = [100.0 if total_all else None]
    bad = 0
    for hour, good, total in hourly:
        bad += total - good
        xs.append(_iso(min(hour + timedelta(hours=1), now)))
        ys.append(round(float((1 - Decimal(bad) / allowed) * 100), 4) if allowed else None)
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": "budget left",
                "x": xs,
                "y": ys,
                "line": {"shape": "hv"},
                "fill": "tozeroy",
                "hovertemplate": "%{x}<br>%{y:.1f} % left<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "ideal (even burn)",
                "x": [_iso(start), _iso(end)],
                "y": [100.0, 0.0],
                "line": {"dash": "dot"},
                "hoverinfo": "skip",
            },
        ],
        "layout": {
            "title": {"text": "Error budget left over the window"},
            "xaxis": {"title": {"text": "time (UTC)"}, "type": "date"},
            "yaxis": {"title": {"text": "budget left (%)"}},
            "legend": {"orientation": "h", "y": -0.25},
        },
    }


def burn_rate_chart(slo: Slo, status: SloStatus | None, period: timedelta) -> dict[str, Any]:
    """The current burn rate of each window, with each alert rule's factor drawn over the two
    windows it watches: a rule fires when both its bars reach its marks."""
    windows = list(BURN_WINDOWS)
    rates = status.burn_rates if status is not None else {}
    data: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": "burn rate",
            "x": windows,
            "y": [_float_or_none(rates.get(w)) for w in windows],
            "hovertemplate": "%{x}: %{y:.2f}" + TIMES + "<extra></extra>",
        }
    ]
    for rule in ALERT_RULES:
        factor = float(round(burn_factor(period, rule), 2))
        data.append(
            {
                "type": "scatter",
                "mode": "markers+lines",
                "name": f"{rule.severity} {rule.long_window} & {rule.short_window}: {factor:g}{TIMES}",
                "x": [rule.short_window, rule.long_window],
                "y": [factor, factor],
                "marker": {"symbol": "line-ew-open", "size": 28, "line": {"width": 3}},
                "line": {"dash": "dot", "width": 1},
                "hovertemplate": f"{rule.severity} alert at {factor:g}{TIMES}<extra></extra>",
            }
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": "Burn rate per window, with the alert thresholds"},
            "xaxis": {
                "title": {"text": "window"},
                "type": "category",
                "categoryorder": "array",
                "categoryarray": windows,
            },
            "yaxis": {"title": {"text": f"burn rate ({TIMES} budget pace)"}, "rangemode": "tozero"},
            "legend": {"orientation": "h", "y": -0.3},
        },
    }


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else round(float(value), 4)
    except (TypeError, ValueError):
        return None


@dataclass
class WorstAction:
    """One bad fact of the window, as the SLO page lists it."""

    subject: str
    href: str
    at: datetime
    agent: str
    what: str
    status: str
    value: str


def worst_actions(slo: Slo, start: datetime, end: datetime) -> list[WorstAction]:
    """The bad facts of the window, worst first (largest value for threshold SLIs, newest
    otherwise), linked to their provenance: two queries (facts, then their actions)."""
    qs = SliFact.objects.filter(
        slo_fact_filter(slo), counted=True, minute__gte=start, minute__lt=end
    )
    threshold_kind = slo.sli in THRESHOLD_KINDS
    if threshold_kind:
        if slo.threshold is None:
            return []
        qs = qs.filter(value__gt=slo.threshold).order_by("-value", "-minute")
    else:
        qs = qs.exclude(slo_fact_good(slo)).order_by("-minute", "subject")
    facts = list(qs.select_related("agent")[:WORST_ACTIONS_LIMIT])
    recall = slo.sli == SliKind.RECALL
    actions: dict[str, Action] = {}
    if not recall:
        actions = {
            a.action_id: a
            for a in Action.objects.filter(action_id__in=[f.subject for f in facts]).only(
                "action_id", "action_type", "target", "status"
            )
        }
    unit = THRESHOLD_UNITS.get(SliKind(slo.sli), "")
    rows = []
    for fact in facts:
        action = actions.get(fact.subject)
        if recall:
            href = f"/audit/events/?{urlencode({'incident_id': fact.subject})}"
            what = f"incident {fact.subject}"
        else:
            href = action_path(fact.subject)
            what = f"{action.action_type} {action.target}".strip() if action else fact.subject
        value = ""
        if threshold_kind and fact.value is not None:
            value = f"{format(Decimal(fact.value).normalize(), 'f')} {unit}"
        rows.append(
            WorstAction(
                subject=fact.subject,
                href=href,
                at=fact.minute,
                agent=fact.agent.slug,
                what=what,
                status=action.status if action else "",
                value=value,
            )
        )
    return rows


@dataclass
class AlertRow:
    alert: SloAlert
    state: str
    duration: str
    peak: str
    last: str
    factor: str


def alert_history(slo: Slo, now: datetime) -> list[AlertRow]:
    rows = []
    for alert in slo.alerts.order_by("-started_at")[:ALERT_HISTORY_LIMIT]:
        until = alert.resolved_at or now
        rows.append(
            AlertRow(
                alert=alert,
                state="resolved" if alert.resolved_at else "firing",
                duration=_duration_short(until - alert.started_at),
                peak=burn_text(alert.peak_burn_rate),
                last=burn_text(alert.last_burn_rate),
                factor=burn_text(alert.factor),
            )
        )
    return rows


def _duration_short(delta: timedelta) -> str:
    from apps.actions.selectors import duration_short

    return duration_short(delta)


def slo_page(*, slo: Slo, now: datetime | None = None) -> dict[str, Any]:
    """Everything the SLO page shows: the tile's figures, three charts (one rollup query for
    the two time charts, none for burn rates), the alert history and the worst actions."""
    now = now or timezone.now()
    start, _ = period_of(slo, now)
    end = period_end(slo, start, now)
    hourly = _hourly(slo, start, now)
    status = _status_of(slo)
    period = timedelta(days=slo.window_days)
    if slo.window_kind == WindowKind.CALENDAR_MONTH:
        period = end - start
    return {
        "slo": slo,
        "tile": slo_tile(slo),
        "status": status,
        "window_start": start,
        "threshold": threshold_text(slo),
        "burn_rates": [
            (w, burn_text(status.burn_rates.get(w)) if status is not None else "—")
            for w in BURN_WINDOWS
        ],
        "factors": [(rule, burn_text(round(burn_factor(period, rule), 2))) for rule in ALERT_RULES],
        "sli_chart": sli_chart(slo, hourly, start, now),
        "burndown_chart": burndown_chart(slo, hourly, start, now, end),
        "burn_chart": burn_rate_chart(slo, status, period),
        "alerts": alert_history(slo, now),
        "worst": worst_actions(slo, start, now),
        "owners": [u.get_username() for u in slo.owners.all()],
    }


# ---------------------------------------------------------------- agent scorecard


def agent_slos(agent: Agent) -> QuerySet[Slo]:
    """The SLOs an agent answers to: its own, its team's and the fleet-wide ones."""
    return slos_with_status().filter(
        Q(scope=SloScope.AGENT, agent=agent)
        | Q(scope=SloScope.TEAM, team_id=agent.team_id)
        | Q(scope=SloScope.ALL)
    )


@dataclass
class AutonomyChange:
    at: datetime
    old: str
    new: str
    reason: str
    by: str
    event_id: str


@dataclass
class Scorecard:
    agent: Agent
    tiles: list[SloTile]
    history: list[AutonomyChange]
    promotion: str | None
    counts: dict[str, int] = field(default_factory=dict)


def autonomy_history(agent: Agent) -> list[AutonomyChange]:
    """The agent's autonomy_change events, newest first. The event's data is read leniently
    (from/to, or old/new mode) since several writers produce it."""
    from apps.audit.models import Event, EventType

    rows = []
    events = Event.objects.filter(agent=agent, type=EventType.AUTONOMY_CHANGE).order_by(
        "-ts", "-id"
    )[:AUTONOMY_HISTORY_LIMIT]
    for ev in events:
        data = ev.data if isinstance(ev.data, dict) else {}
        rows.append(
            AutonomyChange(
                at=ev.ts,
                old=str(data.get("from") or data.get("old_mode") or data.get("previous") or "—"),
                new=str(data.get("to") or data.get("new_mode") or data.get("mode") or "—"),
                reason=str(data.get("reason") or ""),
                by=str(data.get("by") or data.get("actor") or ""),
                event_id=str(ev.id),
            )
        )
    return rows


def promotion_suggestion(agent: Agent, now: datetime) -> str | None:
    """A sentence when the agent has met every one of its SLOs long enough to be promoted."""
    from apps.slo.autonomy import agent_promotion_suggestion

    candidate = agent_promotion_suggestion(agent, now=now)
    if candidate is None:
        return None
    return (
        f"{agent.slug} meets its SLOs: consider promoting it to {candidate.to_mode} "
        f"({candidate.reason})."
    )


def agent_scorecard(*, agent: Agent, now: datetime | None = None) -> Scorecard:
    now = now or timezone.now()
    tiles = []
    for slo in slos_worst_first(agent_slos(agent)):
        tile = slo_tile(slo)
        tile.marker = {"agent": "agent", "team": "team", "all": "global"}[slo.scope]
        tiles.append(tile)
    counts = {state: 0 for state in STATES}
    for tile in tiles:
        counts[tile.state] += 1
    return Scorecard(
        agent=agent,
        tiles=tiles,
        history=autonomy_history(agent),
        promotion=promotion_suggestion(agent, now),
        counts=counts,
    )
