"""Folding events into the Action read model, inside the ingest transaction."""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from apps.actions.callbacks import actions_after_fold, actions_before_fold
from apps.actions.models import Action, ActionStatus
from apps.audit.canonical import content_hash, encode_json
from apps.audit.models import EventType
from apps.core.db import CompiledLookup, pg_upsert_locked, rows_insert_new, rows_update
from apps.fleet.models import Agent

FOLDED_TYPES = frozenset(
    {
        EventType.ALERT,
        EventType.PROPOSAL,
        EventType.POLICY_DECISION,
        EventType.APPROVAL,
        EventType.EXECUTION,
        EventType.ROLLBACK,
        EventType.OUTCOME,
        EventType.VERDICT,
    }
)
FINAL_DECISIONS = frozenset({"approved", "rejected", "denied", "recorded", "expired"})


@dataclass(frozen=True)
class ActionFact:
    """The part of an accepted event that the read model needs."""

    event_id: str
    ts: datetime
    agent_id: int
    event_type: str
    action_id: str
    incident_id: str | None
    agent_version: str
    prompt_version: str
    data: dict[str, Any]


class ActionOwnedElsewhere(Exception):
    """A new action_id turned out to be taken by another agent's action meanwhile."""


_ACTION_LOCKED = CompiledLookup(
    lambda action_id: Action.objects.select_for_update().filter(action_id=action_id)
)


def action_locked(action_id: str) -> Action | None:
    """The action's row, locked until the transaction ends, or None when there is none yet
    (then nothing is locked: a new action is inserted by `actions_apply_facts`, and a
    concurrent writer of the same action_id meets it at the insert)."""
    return _ACTION_LOCKED.first(action_id)


def actions_lock_for_ingest(*, owners: dict[str, int]) -> dict[str, Action]:
    """Creates missing Action rows and locks all of them, in action_id order.

    `owners` maps each action_id to the agent that would own a new row. Two batches that both
    start the same action never collide (ON CONFLICT), and rows are locked in one sorted order
    so concurrent batches cannot deadlock.
    """
    if not owners:
        return {}
    ordered = sorted(owners)
    if connection.vendor == "postgresql":
        rows = pg_upsert_locked(
            Action, key="action_id", keys=ordered, owners=[owners[a] for a in ordered]
        )
        return {action.action_id: action for action in rows}
    now = timezone.now()
    Action.objects.bulk_create(
        [Action(action_id=a, agent_id=owners[a], updated_at=now) for a in ordered],
        ignore_conflicts=True,
    )
    qs = Action.objects.filter(action_id__in=ordered).order_by("action_id")
    if connection.features.has_select_for_update:
        qs = qs.select_for_update()
    return {action.action_id: action for action in qs}


def actions_apply_facts(
    *,
    actions: dict[str, Action],
    facts: Iterable[ActionFact],
    agents: Mapping[int, Agent] | None = None,
) -> int:
    """Folds facts into their locked actions and saves the ones that changed.

    `agents`: the facts' agents, when the caller has them loaded (saves queries)."""
    by_action: dict[str, list[ActionFact]] = defaultdict(list)
    for fact in facts:
        by_action[fact.action_id].append(fact)
    changed: list[Action] = []
    before = actions_before_fold(actions, list(by_action))
    for action_id, action_facts in by_action.items():
        action = actions[action_id]
        for fact in action_facts:
            _fold(action, fact)
        action.status = derive_status(action)
        action.policy_violation = derive_policy_violation(action)
        action.updated_at = timezone.now()
        changed.append(action)
    new = [a for a in changed if a.pk is None]
    losers = rows_insert_new(new, unique="action_id")
    inserted = {id(a) for a in new} - {id(a) for a in losers}
    for lost in losers:
        # Another writer created this action_id since the caller looked: fold into its row.
        locked = actions_lock_for_ingest(owners={lost.action_id: lost.agent_id})[lost.action_id]
        if locked.agent_id != lost.agent_id:
            raise ActionOwnedElsewhere(lost.action_id)
        for fact in by_action[lost.action_id]:
            _fold(locked, fact)
        locked.status = derive_status(locked)
        locked.policy_violation = derive_policy_violation(locked)
        locked.updated_at = timezone.now()
        actions[lost.action_id] = locked
        changed[changed.index(lost)] = locked
    rows_update([a for a in changed if id(a) not in inserted], _UPDATED_FIELDS)
    actions_after_fold(actions=changed, before=before, agents=agents)
    return len(changed)


def _later(ts: datetime, event_id: str, current_ts: datetime | None, current_id: Any) -> bool:
    """True when (ts, id) comes after the current (ts, id): the order-independent tie-break."""
    if current_ts is None:
        return True
    return (ts, event_id) > (current_ts, str(current_id or ""))


def _fold(action: Action, fact: ActionFact) -> None:
    data = fact.data
    if fact.incident_id and not action.incident_id:
        action.incident_id = fact.incident_id
    kind = fact.event_type
    if kind == EventType.ALERT:
        if action.first_alert_at is None or fact.ts < action.first_alert_at:
            action.first_alert_at = fact.ts
    elif kind == EventType.PROPOSAL:
        # The earliest proposal wins; a changed proposal needs a new action_id.
        if action.proposed_at is None or (fact.ts, fact.event_id) < (
            action.proposed_at,
            str(action.proposal_event_id),
        ):
            action.proposal_event_id = fact.event_id
            action.proposed_at = fact.ts
            action.action_type = data.get("action_type", "")
            action.target = data.get("target", "")
            action.env = data.get("env", "")
            action.risk = data.get("risk", "")
            action.confidence = data.get("confidence")
            action.rationale = data.get("rationale", "")
            action.citations = data.get("citations", [])
            action.rollback_plan = data.get("rollback_plan")
            action.parameters = data.get("parameters", {})
            action.agent_version = fact.agent_version
            action.prompt_version = fact.prompt_version
            action.proposal_hash = proposal_arguments_hash(data)
    elif kind in (EventType.POLICY_DECISION, EventType.APPROVAL):
        decision = data.get("decision", "")
        if kind == EventType.APPROVAL:
            entry = {
                "event_id": fact.event_id,
                "by": data.get("by", ""),
                "decision": decision,
                "reason": data.get("reason", ""),
                "comment": data.get("comment", ""),
                "ts": fact.ts.isoformat(),
            }
            if all(a.get("event_id") != fact.event_id for a in action.approvals):
                action.approvals = sorted([*action.approvals, entry], key=lambda a: a["ts"])
        else:
            action.policy_version = str(data.get("policy_version") or "")
            action.effective_risk = data.get("effective_risk") or action.effective_risk
            action.approvers_required = data.get("approvers_required") or 0
            action.matched_rules = data.get("matched_rules", [])
            action.separation_of_duties = bool(data.get("separation_of_duties"))
            action.escalate_at = _parse_ts(data.get("escalate_at"))
            action.expires_at = _parse_ts(data.get("expires_at"))
            if kind == EventType.POLICY_DECISION and decision == "pending_approval":
                action.decision_reasons = data.get("reasons", [])
        if decision in FINAL_DECISIONS and _later(
            fact.ts, fact.event_id, action.decided_at, action.decision_event_id
        ):
            action.decision = decision
            action.decided_at = fact.ts
            action.decision_event_id = fact.event_id
            if kind == EventType.POLICY_DECISION:
                action.decided_by = "policy"
                action.decision_reasons = data.get("reasons", [])
            else:
                action.decided_by = data.get("by", "")
                reason = data.get("reason")
                if reason:
                    action.decision_reasons = [reason]
    elif kind == EventType.EXECUTION:
        status = data.get("status")
        if action.execution_started_at is None or fact.ts < action.execution_started_at:
            action.execution_started_at = fact.ts
        if status in ("succeeded", "failed") and _later(
            fact.ts, fact.event_id, action.execution_finished_at, action.execution_event_id
        ):
            action.execution_finished_at = fact.ts
            action.execution_status = status
            action.execution_event_id = fact.event_id
    elif kind == EventType.ROLLBACK:
        if data.get("status", "succeeded") == "succeeded" and (
            action.rolled_back_at is None or fact.ts < action.rolled_back_at
        ):
            action.rolled_back_at = fact.ts
    elif kind == EventType.OUTCOME:
        if _later(fact.ts, fact.event_id, action.outcome_at, action.outcome_event_id):
            action.outcome_resolved = bool(data.get("resolved"))
            action.outcome_at = fact.ts
            action.outcome_event_id = fact.event_id
    elif kind == EventType.VERDICT and _later(
        fact.ts, fact.event_id, action.verdict_at, action.verdict_event_id
    ):
        action.verdict_correct = bool(data.get("correct"))
        action.verdict_at = fact.ts
        action.verdict_event_id = fact.event_id
        action.verdict_by = data.get("by", "")


def _parse_ts(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def proposal_arguments_hash(data: dict[str, Any]) -> str:
    """What an approval is an approval of: the action, where, and with which parameters."""
    return content_hash(
        encode_json(
            {
                "action_type": data.get("action_type", ""),
                "target": data.get("target", ""),
                "env": data.get("env", ""),
                "parameters": data.get("parameters", {}),
            }
        )
    )


def derive_status(action: Action) -> str:
    """The status as a function of the facts alone, so arrival order cannot change it."""
    if action.rolled_back_at is not None:
        return ActionStatus.ROLLED_BACK
    if action.execution_status == "failed":
        return ActionStatus.FAILED
    if action.execution_status == "succeeded":
        return ActionStatus.SUCCEEDED
    if action.execution_started_at is not None:
        return ActionStatus.EXECUTING
    if action.decision:
        return action.decision
    if action.proposed_at is not None:
        return ActionStatus.PENDING_APPROVAL
    return ActionStatus.REPORTED


def derive_policy_violation(action: Action) -> bool:
    """An execution that no approval preceded is kept, and flagged."""
    if action.execution_started_at is None:
        return False
    return not (
        action.decision == "approved"
        and action.decided_at is not None
        and action.decided_at <= action.execution_started_at
    )


_UPDATED_FIELDS: Sequence[str] = [
    f.name for f in Action._meta.concrete_fields if f.name not in ("id", "action_id", "agent")
]
