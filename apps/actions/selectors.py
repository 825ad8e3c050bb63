"""Reads of the Action read model: the action list, the approval queue, one action's provenance."""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce, NullIf
from django.http import QueryDict
from django.utils import timezone

from apps.actions.flags import Flag, actions_flags
from apps.actions.models import RISK_ORDER, Action, ActionStatus, action_path
from apps.audit.models import Event, EventType
from apps.fleet.models import Agent, Team

PAGE_SIZE = 50
QUEUE_LIMIT = 100
TIMELINE_LIMIT = 500
RISKS = ["critical", "high", "medium", "low"]
# Pending actions this close to expiry are shown as urgent.
SOON = timedelta(minutes=30)

# The higher of the agent's claim and the policy's classification; rows folded before the
# policy recorded one fall back to the agent's claim.
EFFECTIVE_RISK = Coalesce(NullIf(F("effective_risk"), Value("")), F("risk"))
RISK_RANK = Case(
    *[When(risk_effective=name, then=Value(rank)) for name, rank in RISK_ORDER.items()],
    default=Value(-1),
    output_field=IntegerField(),
)


def duration_short(delta: timedelta) -> str:
    """'1h 20m', '3d 4h', '4m', '45s': at most two units, seconds only under a minute, so a
    polled list showing it changes once a minute."""
    seconds = int(abs(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def deadline_text(expires_at: datetime | None, now: datetime) -> str:
    if expires_at is None:
        return "no deadline"
    if expires_at <= now:
        return f"overdue by {duration_short(now - expires_at)}"
    return f"expires in {duration_short(expires_at - now)}"


def action_votes(action: Action) -> tuple[list[str], int]:
    """Who approved so far (distinct people, in order) and how many approvals it needs."""
    voters: list[str] = []
    for entry in action.approvals:
        if entry.get("decision") in ("approve", "approved") and entry.get("by") not in voters:
            voters.append(entry.get("by", ""))
    return voters, max(action.approvers_required, 1)


# ---------------------------------------------------------------- filters


@dataclass(frozen=True)
class ActionFilters:
    """The list and queue filters, read from GET parameters; unknown values are ignored."""

    team: str = ""
    agent: str = ""
    env: str = ""
    risk: str = ""
    status: str = ""
    violation: bool = False

    @classmethod
    def from_params(cls, params: QueryDict) -> "ActionFilters":
        def text(name: str) -> str:
            return params.get(name, "").strip()[:128]

        status = text("status")
        risk = text("risk")
        return cls(
            team=text("team"),
            agent=text("agent"),
            env=text("env"),
            risk=risk if risk in RISK_ORDER else "",
            status=status if status in ActionStatus.values else "",
            violation=params.get("violation", "") in ("1", "on", "true"),
        )

    def apply(self, qs: QuerySet[Action]) -> QuerySet[Action]:
        if self.team:
            qs = qs.filter(agent__team__slug=self.team)
        if self.agent:
            qs = qs.filter(agent__slug=self.agent)
        if self.env:
            qs = qs.filter(env=self.env)
        if self.risk:
            qs = qs.filter(Q(effective_risk=self.risk) | Q(effective_risk="", risk=self.risk))
        if self.status:
            qs = qs.filter(status=self.status)
        if self.violation:
            qs = qs.filter(policy_violation=True)
        return qs

    def query(self, **overrides: Any) -> str:
        """The filters as a query string (for links, pagination and the poll URL)."""
        values = {
            "team": self.team,
            "agent": self.agent,
            "env": self.env,
            "risk": self.risk,
            "status": self.status,
            "violation": "1" if self.violation else "",
            **overrides,
        }
        out = QueryDict(mutable=True)
        for key, value in values.items():
            if value not in ("", None):
                out[key] = str(value)
        return out.urlencode()

    @property
    def active(self) -> bool:
        return any((self.team, self.agent, self.env, self.risk, self.status, self.violation))


def filter_options() -> dict[str, list[str]]:
    """Choices for the filter selects: two small indexed reads."""
    return {
        "teams": list(Team.objects.order_by("slug").values_list("slug", flat=True)),
        "agents": list(Agent.objects.order_by("slug").values_list("slug", flat=True)),
        "envs": sorted(
            {e for e in Agent.objects.values_list("environment", flat=True).distinct() if e}
        ),
        "risks": RISKS,
    }


# ---------------------------------------------------------------- the action list


def action_page(*, params: QueryDict, user: object) -> dict[str, Any]:
    filters = ActionFilters.from_params(params)
    qs = filters.apply(Action.objects.visible_to(user)).select_related("agent", "agent__team")
    try:
        page = min(max(int(params.get("page", "1")), 1), 10_000)
    except ValueError:
        page = 1
    rows = list(qs.order_by("-proposed_at", "-id")[(page - 1) * PAGE_SIZE : page * PAGE_SIZE + 1])
    return {
        "actions": rows[:PAGE_SIZE],
        "page": page,
        "has_next": len(rows) > PAGE_SIZE,
        "statuses": ActionStatus.choices,
        "status": filters.status,
        "filters": filters,
        "filter_query": filters.query(),
        "options": filter_options(),
    }


# ---------------------------------------------------------------- the approval queue


# The rows show none of these; rationale and citations stay loaded for the flags.
QUEUE_DEFERRED = (
    "rollback_plan",
    "parameters",
    "matched_rules",
    "decision_reasons",
    "proposal_hash",
)


@dataclass
class QueueRow:
    """One pending action as the queue shows it."""

    action: Action
    risk: str
    voters: list[str]
    required: int
    deadline: str
    soon: bool
    overdue: bool
    escalated: bool
    href: str = ""
    flags: list[Flag] = field(default_factory=list)


def queue_counts(*, filters: ActionFilters, user: object, now: datetime) -> dict[str, int]:
    """Counts per state for the queue's header: pending now, decisions of the last 24 h, open
    policy violations. Three small queries rather than one aggregate, so each can use its
    index (status; the violations' partial index; decided_at once it has one)."""
    qs = filters.apply(Action.objects.visible_to(user))
    counts = dict.fromkeys(("approved", "rejected", "expired", "denied"), 0)
    recent = (
        qs.filter(decided_at__gte=now - timedelta(hours=24), decision__in=list(counts))
        .values_list("decision")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts.update(dict(recent))
    counts["pending"] = qs.filter(status=ActionStatus.PENDING_APPROVAL).count()
    counts["violations"] = qs.filter(policy_violation=True).count()
    return counts


def pending_queue(
    *, params: QueryDict, user: object, now: datetime | None = None, limit: int = QUEUE_LIMIT
) -> dict[str, Any]:
    """Pending actions by urgency: effective risk (critical first), then time left before
    expiry (soonest first, none last), then the oldest proposal. Only the `limit` most urgent
    are rendered; the rest are counted."""
    now = now or timezone.now()
    filters = ActionFilters.from_params(params)
    filters = ActionFilters(
        team=filters.team, agent=filters.agent, env=filters.env, risk=filters.risk
    )
    pending = filters.apply(
        Action.objects.visible_to(user).filter(status=ActionStatus.PENDING_APPROVAL)
    )
    ordered = (
        pending.select_related("agent", "agent__team")
        .defer(*QUEUE_DEFERRED)
        .annotate(risk_effective=EFFECTIVE_RISK)
        .annotate(risk_rank=RISK_RANK)
        .order_by(
            F("risk_rank").desc(),
            F("expires_at").asc(nulls_last=True),
            F("proposed_at").asc(nulls_last=True),
            "id",
        )
    )
    rows = []
    for action in ordered[:limit]:
        voters, required = action_votes(action)
        left = action.expires_at - now if action.expires_at else None
        rows.append(
            QueueRow(
                action=action,
                risk=action.risk_effective or "",
                voters=voters,
                required=required,
                deadline=deadline_text(action.expires_at, now),
                soon=left is not None and timedelta(0) < left <= SOON,
                overdue=left is not None and left <= timedelta(0),
                escalated=action.escalated_at is not None
                or (action.escalate_at is not None and action.escalate_at <= now),
                href=action_path(action.action_id),
            )
        )
    flags = actions_flags([row.action for row in rows])
    for row in rows:
        row.flags = flags[row.action.action_id]
    counts = queue_counts(filters=filters, user=user, now=now)
    return {
        "rows": rows,
        "counts": counts,
        "more": max(counts["pending"] - len(rows), 0),
        "filters": filters,
        "filter_query": filters.query(),
        "options": filter_options(),
        "now": now,
    }


# ---------------------------------------------------------------- one action's provenance


# Bulky fields shown folded (<details>), as stored: already PII-scrubbed at ingest.
BODY_FIELDS = {
    EventType.LLM_CALL: ("request", "response"),
    EventType.TOOL_CALL: ("arguments", "result"),
}


STORY_ORDER = {
    EventType.ALERT: 0,
    EventType.CONTEXT: 1,
    EventType.PROPOSAL: 3,
    EventType.POLICY_DECISION: 4,
    EventType.APPROVAL: 5,
    EventType.EXECUTION: 6,
    EventType.ROLLBACK: 7,
    EventType.OUTCOME: 8,
    EventType.VERDICT: 9,
}
TYPE_LABELS = {
    EventType.ALERT: "Alert",
    EventType.CONTEXT: "Context read",
    EventType.LLM_CALL: "LLM call",
    EventType.TOOL_CALL: "Tool call",
    EventType.PROPOSAL: "Proposal",
    EventType.POLICY_DECISION: "Policy decision",
    EventType.APPROVAL: "Approval",
    EventType.EXECUTION: "Execution",
    EventType.ROLLBACK: "Rollback",
    EventType.OUTCOME: "Outcome",
    EventType.VERDICT: "Verdict",
    EventType.NOTE: "Note",
}


@dataclass
class TimelineItem:
    event: Event
    offset: str
    # An alert or context read of the same incident, recorded without this action's id.
    from_incident: bool
    # (field, text, is_json) for the bodies shown folded.
    bodies: list[tuple[str, str, bool]] = field(default_factory=list)
    # An llm_call's cost as stored at ingest (apps.costs): "" when unpriced.
    cost_usd: str = ""
    cost_source: str = ""

    @property
    def label(self) -> str:
        return TYPE_LABELS.get(self.event.type, self.event.type)  # type: ignore[call-overload]


def _bodies(event: Event) -> list[tuple[str, str, bool]]:
    out = []
    for name in BODY_FIELDS.get(event.type, ()):  # type: ignore[call-overload]
        value = event.data.get(name) if isinstance(event.data, dict) else None
        if value in (None, "", [], {}):
            continue
        if isinstance(value, str):
            out.append((name, value, False))
        else:
            out.append((name, json.dumps(value, indent=2, ensure_ascii=False, default=str), True))
    return out


@dataclass
class LlmTotals:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_tokens: int = 0
    latency_ms: float = 0.0
    cost_usd: Decimal = Decimal(0)
    unpriced: int = 0
    energy_wh: Decimal = Decimal(0)


def action_get(*, action_id: str, user: object) -> Action:
    """Raises Action.DoesNotExist when the action is not there or not visible to the user."""
    return (
        Action.objects.visible_to(user)
        .select_related("agent", "agent__team")
        .get(action_id=action_id)
    )


def action_timeline(*, action: Action, user: object) -> tuple[list[TimelineItem], bool]:
    """Every event of the action, plus the alerts and context reads of its incident, in time
    order; the bool says the list was cut at TIMELINE_LIMIT."""
    related = Q(action_id=action.action_id)
    if action.incident_id:
        related |= Q(
            incident_id=action.incident_id,
            type__in=[EventType.ALERT, EventType.CONTEXT],
            action_id__isnull=True,
        )
    events = list(
        Event.objects.visible_to(user)
        .filter(related)
        .select_related("agent")
        .order_by("ts", "id")[: TIMELINE_LIMIT + 1]
    )
    cut = len(events) > TIMELINE_LIMIT
    # A proposal and its policy decision share one timestamp: the story's order breaks ties.
    events = sorted(events[:TIMELINE_LIMIT], key=lambda e: (e.ts, STORY_ORDER.get(e.type, 2)))
    start = events[0].ts if events else None
    items = [
        TimelineItem(
            event=e,
            offset="start" if e.ts == start else f"+{duration_short(e.ts - start)}",
            from_incident=e.action_id is None,
            bodies=_bodies(e),
        )
        for e in events
    ]
    return items, cut


def llm_totals(items: list[TimelineItem]) -> LlmTotals:
    """Tokens from the events; cost and estimated energy from their usage rows (one query),
    which also label each call's cost on the timeline."""
    from apps.costs.models import LlmUsage

    calls = [item for item in items if item.event.type == EventType.LLM_CALL]
    usages = (
        {
            u.event_id: u
            for u in LlmUsage.objects.filter(event_id__in=[i.event.pk for i in calls]).only(
                "event_id", "cost_usd", "cost_source", "energy_wh"
            )
        }
        if calls
        else {}
    )
    totals = LlmTotals()
    for item in calls:
        data = item.event.data
        totals.calls += 1
        totals.input_tokens += int(data.get("input_tokens") or 0)
        totals.output_tokens += int(data.get("output_tokens") or 0)
        totals.cache_tokens += int(data.get("cache_read_input_tokens") or 0) + int(
            data.get("cache_creation_input_tokens") or 0
        )
        totals.latency_ms += float(data.get("latency_ms") or 0)
        usage = usages.get(item.event.pk)
        if usage is not None:
            totals.energy_wh += usage.energy_wh
            item.cost_source = usage.cost_source
        if usage is None or usage.cost_usd is None:
            totals.unpriced += 1
        else:
            totals.cost_usd += usage.cost_usd
            item.cost_usd = format(usage.cost_usd.normalize(), "f")
    return totals


def verdict_allowed(action: Action) -> bool:
    """A proposal can be judged once there is something to judge it by."""
    return action.outcome_at is not None or action.execution_finished_at is not None


def action_provenance(
    *, action: Action, user: object, now: datetime | None = None
) -> dict[str, Any]:
    """The action page and the queue's right pane: status, deadlines, votes, timeline."""
    now = now or timezone.now()
    items, cut = action_timeline(action=action, user=user)
    voters, required = action_votes(action)
    pending = action.status == ActionStatus.PENDING_APPROVAL
    return {
        "action": action,
        "risk": action.effective_risk or action.risk,
        "pending": pending,
        "voters": voters,
        "required": required,
        "votes_left": max(required - len(voters), 0),
        "deadline": deadline_text(action.expires_at, now) if pending else "",
        "escalation": (
            ""
            if not pending or action.escalate_at is None
            else (
                f"escalated {duration_short(now - action.escalate_at)} ago"
                if action.escalate_at <= now
                else f"escalates in {duration_short(action.escalate_at - now)}"
            )
        ),
        "timeline": items,
        "timeline_cut": cut,
        "llm": llm_totals(items),
        "verdict_allowed": verdict_allowed(action),
        "flags": actions_flags([action])[action.action_id],
    }
