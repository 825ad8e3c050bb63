"""What one action cost: its own LLM and tool calls, plus its share of what no action can be
tied to (the agent's other calls that day, its audit-log storage, the cloud cost allocated to
it and to its team).

The shares divide a day's pool evenly between the actions proposed that day: the agent's
pool between the agent's actions, the team's (cloud cost allocated to the team but to no
agent) between the team's actions. The direct part is known as soon as the calls are stored;
the shares move as bills arrive, which is why the cost-per-action SLI counts the direct LLM
part only (apps.slo.costs) and this page shows both.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum

from apps.actions.models import Action
from apps.audit.models import Event, EventType
from apps.costs.drivers import UNNAMED_TOOL, driver_rates, tool_call_totals
from apps.costs.explorer import CLOUD, LOGGING, ExplorerQuery, cost_cells
from apps.costs.models import CostSource, EnergySource, LlmUsage


@dataclass(frozen=True)
class CostLine:
    label: str
    cost_usd: Decimal | None  # None: part of it has no price
    energy_wh: Decimal | None = None  # None: no energy figure for this line
    note: str = ""


@dataclass
class ActionCostBreakdown:
    day: date
    direct: list[CostLine] = field(default_factory=list)
    shared: list[CostLine] = field(default_factory=list)
    agent_actions: int = 0
    team_actions: int = 0
    measured_wh: Decimal = Decimal(0)  # of the action's own LLM calls

    @property
    def lines(self) -> list[CostLine]:
        return self.direct + self.shared

    @property
    def total_usd(self) -> Decimal:
        return sum((line.cost_usd or Decimal(0) for line in self.lines), Decimal(0))

    @property
    def total_wh(self) -> Decimal:
        return sum((line.energy_wh or Decimal(0) for line in self.lines), Decimal(0))

    @property
    def energy_label(self) -> str:
        """How much of the action's own LLM energy was measured rather than estimated (shares
        of other calls are estimated or measured too, but are shown as shares)."""
        if not self.measured_wh:
            return "Wh est."
        if self.measured_wh == self.total_wh:
            return "Wh measured"
        return f"Wh, {self.measured_wh.normalize():f} Wh of it measured"

    @property
    def incomplete(self) -> bool:
        return any(line.cost_usd is None for line in self.lines)


def _llm(
    qs: QuerySet[LlmUsage], measured: list[Decimal] | None = None
) -> tuple[int, Decimal | None, Decimal]:
    """Calls, cost (None: one is unpriced) and Wh; the measured part of the Wh (self-hosted
    models with DCGM power) is appended to `measured`."""
    row = qs.aggregate(
        calls=Count("pk"),
        cost=Sum("cost_usd"),
        wh=Sum("energy_wh"),
        measured_wh=Sum("energy_wh", filter=Q(energy_source=EnergySource.MEASURED)),
        unpriced=Count("pk", filter=Q(cost_source=CostSource.UNPRICED)),
    )
    cost = None if row["unpriced"] else (row["cost"] or Decimal(0))
    if measured is not None:
        measured.append(row["measured_wh"] or Decimal(0))
    return row["calls"], cost, row["wh"] or Decimal(0)


def _tools(events: QuerySet[Event], day: date) -> tuple[int, Decimal | None]:
    """Calls and cost of tool_call events, each tool priced at its rate of `day`; None when a
    call has neither a reported cost nor a rate."""
    rates = driver_rates()
    calls, cost, unknown = 0, Decimal(0), False
    for row in tool_call_totals(events):
        priced = rates.tool_calls_cost(
            row["tool"] or UNNAMED_TOOL,
            day,
            calls=row["n"],
            reported_calls=row["n_reported"],
            reported_usd=row["usd"] or Decimal(0),
        )
        calls += row["n"]
        cost += priced.usd
        unknown = unknown or bool(priced.unpriced)
    return calls, (None if unknown else cost)


# The cloud energy given to an agent (or to a team but no agent) on one day: each line item's
# energy times the allocation's share of the line's effective cost (lines that cost nothing
# give no share here; the energy page splits those evenly).
_CLOUD_WH_SQL = """
SELECT coalesce(sum(e.energy_wh * a.effective_cost / li.effective_cost), 0)
FROM costs_cloudenergy e
JOIN billing_costlineitem li ON li.id = e.line_item_id
JOIN billing_costallocation a ON a.line_item_id = li.id
WHERE li.charge_period_start >= %s AND li.charge_period_start < %s
    AND e.energy_wh IS NOT NULL AND li.effective_cost <> 0 AND {who}
"""


def _cloud_wh(start: datetime, end: datetime, *, agent_id: int | None, team_id: int) -> Decimal:
    who = "a.agent_id = %s" if agent_id is not None else "a.team_id = %s AND a.agent_id IS NULL"
    with connection.cursor() as cursor:
        cursor.execute(
            _CLOUD_WH_SQL.format(who=who),
            [start, end, agent_id if agent_id is not None else team_id],
        )
        return Decimal(cursor.fetchone()[0] or 0)


def action_cost_breakdown(action: Action) -> ActionCostBreakdown:
    # An execution reported without a proposal has no proposal time (a policy violation).
    at = action.proposed_at or action.execution_started_at or action.updated_at
    day = at.astimezone(UTC).date()
    start = datetime.combine(day, time.min, tzinfo=UTC)
    end = start + timedelta(days=1)
    result = ActionCostBreakdown(day=day)

    measured: list[Decimal] = []
    calls, cost, wh = _llm(LlmUsage.objects.filter(action_id=action.action_id), measured)
    result.measured_wh = measured[0]
    if calls:
        result.direct.append(CostLine(f"{calls} LLM call{'s' if calls != 1 else ''}", cost, wh))
    tool_calls, tool_cost = _tools(
        Event.objects.filter(action_id=action.action_id, type=EventType.TOOL_CALL), day
    )
    if tool_calls:
        result.direct.append(
            CostLine(f"{tool_calls} tool call{'s' if tool_calls != 1 else ''}", tool_cost)
        )

    agent, team = action.agent, action.agent.team
    proposed_that_day = Action.objects.filter(proposed_at__gte=start, proposed_at__lt=end)
    result.agent_actions = proposed_that_day.filter(agent=agent).count()
    result.team_actions = proposed_that_day.filter(agent__team=team).count()
    if result.agent_actions:
        n = result.agent_actions
        share = f"1/{n} of {agent.slug}'s"
        calls, cost, wh = _llm(
            LlmUsage.objects.filter(agent=agent, ts__gte=start, ts__lt=end, action_id__isnull=True)
        )
        if calls:
            result.shared.append(
                CostLine(
                    f"{share} {calls} LLM calls tied to no action",
                    None if cost is None else cost / n,
                    wh / n,
                )
            )
        tool_calls, tool_cost = _tools(
            Event.objects.filter(
                agent=agent,
                ts__gte=start,
                ts__lt=end,
                type=EventType.TOOL_CALL,
                action_id__isnull=True,
            ),
            day,
        )
        if tool_calls:
            result.shared.append(
                CostLine(
                    f"{share} {tool_calls} tool calls tied to no action",
                    None if tool_cost is None else tool_cost / n,
                )
            )
        cells, _ = cost_cells(
            ExplorerQuery(start=day, end=day, agents=(agent.slug,), drivers=(LOGGING, CLOUD))
        )
        cloud_wh = _cloud_wh(start, end, agent_id=agent.pk, team_id=team.pk)
        for driver, label in ((LOGGING, "audit-log storage"), (CLOUD, "cloud cost")):
            pool = sum((c.cost for c in cells if c.driver == driver), Decimal(0))
            wh = cloud_wh if driver == CLOUD else Decimal(0)
            if pool or wh:
                result.shared.append(CostLine(f"{share} {label}", pool / n, wh / n if wh else None))
    if result.team_actions:
        cells, _ = cost_cells(
            ExplorerQuery(start=day, end=day, teams=(team.slug,), drivers=(CLOUD,))
        )
        pool = sum((c.cost for c in cells if not c.agent), Decimal(0))
        team_wh = _cloud_wh(start, end, agent_id=None, team_id=team.pk)
        if pool or team_wh:
            result.shared.append(
                CostLine(
                    f"1/{result.team_actions} of team {team.slug}'s cloud cost given to no agent",
                    pool / result.team_actions,
                    team_wh / result.team_actions if team_wh else None,
                )
            )
    return result
