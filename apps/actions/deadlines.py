"""Pending actions past their deadlines: escalation notifies the next group once, expiry
decides `expired` and tells the agent and its owners.

Both claim rows with SELECT … FOR UPDATE SKIP LOCKED: two sweeps running at once take disjoint
rows, and a row an approver is deciding right now is left for the next sweep. The expiry is
written as an `approval` event through the ingest path, so the read model, the ledger, the
long-poll and the agent's callback all see one ordinary decision.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.actions.models import Action, ActionStatus, action_path
from apps.audit.services.opsdash_events import opsdash_event_record
from apps.fleet.models import Agent
from apps.notifications.services import notify
from apps.policy.models import PolicyVersion
from apps.policy.schema import Deadlines, policy_parse

BATCH = 100

# Versions are immutable: each is parsed once per process. Keyed by the source's digest too,
# so a database restored or rebuilt with other documents under the same numbers is not misread.
_deadlines_by_version: dict[tuple[int, str], Deadlines] = {}


@dataclass(frozen=True)
class DeadlineSweep:
    expired: int
    escalated: int


def policy_deadlines(policy_version: str) -> Deadlines:
    """The deadlines of the policy version that decided the action (defaults without one)."""
    if not policy_version.isdigit():
        return Deadlines()
    number = int(policy_version)
    versions = PolicyVersion.objects.filter(number=number)
    digest = versions.values_list("sha256", flat=True).first()
    if digest is None:
        return Deadlines()
    cached = _deadlines_by_version.get((number, digest))
    if cached is None:
        source = versions.values_list("source", flat=True).get()
        cached = _deadlines_by_version[(number, digest)] = policy_parse(source).deadlines
    return cached


def deadlines_sweep(*, now: datetime | None = None) -> DeadlineSweep:
    now = now or timezone.now()
    # Expiry first: an action past both deadlines is decided, not escalated.
    expired = actions_expire_due(now=now)
    return DeadlineSweep(expired=expired, escalated=actions_escalate_due(now=now))


def _claim(**deadline_filter: datetime | bool) -> list[Action]:
    return list(
        Action.objects.select_for_update(skip_locked=True)
        .filter(status=ActionStatus.PENDING_APPROVAL, **deadline_filter)
        .order_by("pk")[:BATCH]
    )


def actions_escalate_due(*, now: datetime | None = None) -> int:
    """Sets escalated_at once per pending action past escalate_at and notifies the role."""
    now = now or timezone.now()
    total = 0
    while True:
        with transaction.atomic():
            batch = _claim(escalate_at__lte=now, escalated_at__isnull=True)
            if not batch:
                return total
            Action.objects.filter(pk__in=[a.pk for a in batch]).update(escalated_at=now)
            agents = Agent.objects.in_bulk({a.agent_id for a in batch})
            for action in batch:
                _escalation_notify(action, agents[action.agent_id])
        total += len(batch)
        if len(batch) < BATCH:
            return total


def _escalation_notify(action: Action, agent: Agent) -> None:
    deadlines = policy_deadlines(action.policy_version)
    risk = action.effective_risk or action.risk or "medium"
    waited = _deadline_text(
        getattr(deadlines, risk, None) and getattr(deadlines, risk).escalate_after,
        action.escalate_at,
        action.proposed_at,
    )
    expires = f" It expires at {action.expires_at:%Y-%m-%d %H:%M} UTC." if action.expires_at else ""
    notify(
        kind="action_escalated",
        title=f"Escalated: {action.action_type or 'an action'} by {agent.slug} waits for approval",
        body=(
            f"{agent.slug} proposed {action.action_type or 'an action'}"
            f"{' on ' + action.target if action.target else ''} ({risk} risk); nobody has "
            f"decided it within {waited}{_version_text(action.policy_version)}.{expires}"
        ),
        url=action_path(action.action_id),
        roles=(deadlines.escalate_to,),
        dedup_key=f"escalate:{action.action_id}",
    )


def actions_expire_due(*, now: datetime | None = None) -> int:
    """Decides `expired` for pending actions past expires_at, under their row locks."""
    now = now or timezone.now()
    total = 0
    while True:
        with transaction.atomic():
            batch = _claim(expires_at__lte=now)
            if not batch:
                return total
            agents = Agent.objects.select_related("team").in_bulk({a.agent_id for a in batch})
            for action in batch:
                action_expire(action=action, agent=agents[action.agent_id], now=now)
        total += len(batch)
        if len(batch) < BATCH:
            return total


def action_expire(*, action: Action, agent: Agent, now: datetime) -> None:
    """Writes the `expired` decision; the caller holds the action's row lock."""
    deadlines = policy_deadlines(action.policy_version)
    risk = action.effective_risk or action.risk or "medium"
    within = _deadline_text(
        getattr(deadlines, risk, None) and getattr(deadlines, risk).expire_after,
        action.expires_at,
        action.proposed_at,
    )
    reason = f"Not decided within {within}{_version_text(action.policy_version)}"
    opsdash_event_record(
        agent=agent,
        event_type="approval",
        action_id=action.action_id,
        incident_id=action.incident_id,
        ts=now,
        data={"decision": "expired", "by": "opsdash", "reason": reason},
    )
    notify(
        kind="action_expired",
        title=f"Expired: {action.action_type or 'an action'} by {agent.slug} was not decided",
        body=(
            f"{reason}. {agent.slug} has been told (status expired) and must not run it; "
            "propose it again with a new action_id if it is still needed."
        ),
        url=action_path(action.action_id),
        agent=agent,
        dedup_key=f"expired:{action.action_id}",
    )


def _version_text(policy_version: str) -> str:
    return f" (policy v{policy_version})" if policy_version else " (no policy loaded)"


def _deadline_text(
    configured: str | None, deadline: datetime | None, proposed_at: datetime | None
) -> str:
    """The policy's own words ('8h') when it has them, else the span the action was given."""
    if configured:
        return configured.strip()
    if deadline is None or proposed_at is None:
        return "its deadline"
    return _span(deadline - proposed_at)


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
