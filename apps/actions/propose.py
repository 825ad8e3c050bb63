"""Agents ask before they act: POST /api/v1/actions evaluates the policy and records both."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from django.db import connection, transaction
from django.utils import timezone
from msgspec import Meta

from apps.actions.models import Action, ActionStatus
from apps.actions.services import (
    ActionOwnedElsewhere,
    action_locked,
    actions_lock_for_ingest,
    proposal_arguments_hash,
)
from apps.audit.canonical import encode_json, format_ts
from apps.audit.models import EventSource
from apps.audit.schemas import ProposalData
from apps.audit.services.event_prepare import msgspec_errors
from apps.audit.services.ingest import ALL_TYPES, event_batch_ingest
from apps.budgets.selectors import proposal_throttle
from apps.chatops.hooks import action_pending_announce
from apps.core.db import rows_fetch
from apps.fleet.models import Agent
from apps.policy.engine import Proposal
from apps.policy.selectors import ACTIVE_VERSION_SQL, policy_compiled
from apps.policy.services import policy_shadow_evaluate

# Event ids derived from the action id: a retried POST writes the very same events (duplicates).
_EVENT_NAMESPACE = uuid.UUID("6f1c2d4e-8a3b-4c5d-9e0f-1a2b3c4d5e6f")


class ProposalIn(ProposalData, forbid_unknown_fields=True, kw_only=True):
    """A proposal as an agent sends it to POST /api/v1/actions: the proposal plus its ids."""

    action_id: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=128,
            description="Required. The agent's id for this action: every later event about it "
            "(execution, rollback, outcome) carries it. Retrying with the same id and arguments "
            "is safe; other arguments need a new id.",
        ),
    ]
    incident_id: (
        Annotated[
            str, Meta(max_length=128, description="Groups the alerts and actions of one incident.")
        ]
        | None
    ) = None
    agent_version: Annotated[str, Meta(max_length=64)] = ""
    prompt_version: Annotated[str, Meta(max_length=64)] = ""


def proposal_schema_components() -> dict[str, Any]:
    """JSON Schema of ProposalIn for the OpenAPI document."""
    _, components = msgspec.json.schema_components(
        [ProposalIn], ref_template="#/components/schemas/{name}"
    )
    return components


class ProposalRejected(Exception):
    def __init__(
        self, status: int, message: str, detail: Any = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.retry_after = retry_after


@dataclass
class ProposalAnswer:
    action: Action
    created: bool

    def as_dict(self) -> dict[str, Any]:
        a = self.action
        return {
            "action_id": a.action_id,
            "status": a.status,
            "reasons": a.decision_reasons,
            "policy_version": int(a.policy_version) if a.policy_version.isdigit() else None,
            "effective_risk": a.effective_risk or a.risk,
            "approvers_required": a.approvers_required,
            "matched_rules": a.matched_rules,
        }


def proposal_decode(body: bytes) -> ProposalIn:
    try:
        proposal = msgspec.json.decode(body, type=ProposalIn)
    except msgspec.ValidationError as exc:
        raise ProposalRejected(400, "The proposal is not valid.", msgspec_errors(exc)) from exc
    except msgspec.DecodeError as exc:
        raise ProposalRejected(400, f"The body is not valid JSON: {exc}.") from exc
    return proposal


# The active policy's key rides along: one round trip for everything the decision reads.
_AGENT_STATE_SQL = (
    "SELECT halted, halted_reason, autonomy_mode, (" + ACTIVE_VERSION_SQL + ") "
    "FROM fleet_agent WHERE id = %s"
)


def _agent_state_for_decision(agent: Agent) -> tuple[bool, str, str, str | None]:
    """(halted, halted_reason, autonomy_mode, active policy's key) as committed now."""
    [(halted, reason, mode, policy_key)] = rows_fetch(_AGENT_STATE_SQL, [agent.pk])
    return bool(halted), reason or "", mode, policy_key


def _halted_refusal(agent: Agent, reason: str) -> ProposalRejected:
    return ProposalRejected(
        423,
        f"{agent.slug} is halted: {reason or 'no reason given'}. "
        "Nothing may run until a person resumes it.",
    )


def _halt_after_ledger_lock(agent: Agent) -> None:
    """Read again once this transaction holds the ledger head (its events are being sealed):
    every halt takes that lock too (apps.fleet.services.agent_halted_set, and a budget's halt
    inside an ingest), so a halt committed before this point is seen here and one arriving
    later waits for this proposal's commit. Halts and proposals are strictly ordered, and a
    proposal holds no lock of its own on its agent."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT halted, halted_reason FROM fleet_agent WHERE id = %s", [agent.pk])
        halted, reason = cursor.fetchone()
    if halted:
        raise _halted_refusal(agent, reason)


_OTHER_AGENT = "This action_id belongs to another agent; use a new one."


def _repeat_answer(action: Action, *, agent: Agent, arguments: dict[str, Any]) -> ProposalAnswer:
    """The answer to a proposal whose action_id is already taken (its row locked)."""
    if action.agent_id != agent.pk:
        raise ProposalRejected(409, _OTHER_AGENT)
    if action.proposal_hash != proposal_arguments_hash(arguments):
        raise ProposalRejected(
            409,
            "This action_id was proposed with other arguments (type, target, env or "
            "parameters). A changed proposal needs a new action_id.",
        )
    return ProposalAnswer(action, created=False)


def action_propose(
    *, agent: Agent, proposal: ProposalIn, now: datetime | None = None
) -> ProposalAnswer:
    """Decides a proposal once: a retry with the same arguments gets the same answer, other
    arguments under the same action_id get 409, a halted agent gets 423, and one over a fired
    throttle of a budget covering it gets 429 (a retry of a stored proposal is answered)."""
    data = msgspec.to_builtins(proposal)
    arguments = {k: data[k] for k in ProposalData.__struct_fields__ if k in data}
    with transaction.atomic():
        halted, halted_reason, autonomy_mode, policy_key = _agent_state_for_decision(agent)
        if halted:
            raise _halted_refusal(agent, halted_reason)
        now = now or timezone.now()
        # An existing row is locked: concurrent proposals of its action_id wait for this one.
        # A new action_id has no row to lock yet; the ingest inserts it with the events, and a
        # concurrent twin meets this one's events at their insert and answers as a repeat.
        existing = action_locked(proposal.action_id)
        if existing is not None and (
            existing.agent_id != agent.pk or existing.proposal_event_id is not None
        ):
            return _repeat_answer(existing, agent=agent, arguments=arguments)
        throttle = proposal_throttle(agent, now)
        if throttle is not None:
            # A twin of this proposal may have committed since the lookup above: a retry is
            # answered, not throttled.
            stored = action_locked(proposal.action_id)
            if stored is not None and (
                stored.agent_id != agent.pk or stored.proposal_event_id is not None
            ):
                return _repeat_answer(stored, agent=agent, arguments=arguments)
            raise ProposalRejected(429, throttle.message(agent), retry_after=throttle.retry_after)
        action = existing or Action(action_id=proposal.action_id, agent_id=agent.pk, updated_at=now)
        locked = {proposal.action_id: action}
        evaluated = Proposal(
            action_type=proposal.action_type,
            target=proposal.target,
            env=proposal.env,
            risk=proposal.risk,
            confidence=proposal.confidence,
            agent=agent.slug,
            team=agent.team.slug,
            autonomy_mode=autonomy_mode,
            rollback_plan=proposal.rollback_plan,
            parameters=proposal.parameters,
        )
        decision = policy_compiled(policy_key).evaluate(evaluated, now=now)
        # A canary draft, if one runs for this agent, decides beside it (recorded, not obeyed).
        policy_shadow_evaluate(
            proposal=evaluated, active=decision, action_id=proposal.action_id, now=now
        )
        common = {
            "agent": agent.slug,
            "action_id": proposal.action_id,
            "ts": format_ts(now),
            "agent_version": proposal.agent_version,
            "prompt_version": proposal.prompt_version,
        }
        if proposal.incident_id:
            common["incident_id"] = proposal.incident_id
        items = [
            {
                **common,
                "id": str(uuid.uuid5(_EVENT_NAMESPACE, f"{proposal.action_id}:proposal")),
                "type": "proposal",
                "data": arguments,
            },
            {
                **common,
                "id": str(uuid.uuid5(_EVENT_NAMESPACE, f"{proposal.action_id}:policy")),
                "type": "policy_decision",
                "data": {
                    "decision": decision.status,
                    "reasons": decision.reasons,
                    "policy_version": decision.policy_version,
                    "matched_rules": decision.matched_rules,
                    "effective_risk": decision.effective_risk,
                    "approvers_required": decision.approvers_required,
                    "separation_of_duties": decision.separation_of_duties,
                    **{k: format_ts(v) for k, v in decision.deadlines(now).items()},
                },
            },
        ]
        try:
            result = event_batch_ingest(
                items=[encode_json(i) for i in items],
                source=EventSource.OPSDASH,
                allowed_types=ALL_TYPES,
                agents_by_slug=lambda slug: agent if slug == agent.slug else None,
                locked_actions=locked,
                expect_new=True,
            )
        except ActionOwnedElsewhere as exc:
            raise ProposalRejected(409, _OTHER_AGENT) from exc
        if result.accepted == 0 and all(set(r["errors"]) == {"id"} for r in result.rejected):
            # A concurrent request with this action_id committed its proposal first.
            raced = actions_lock_for_ingest(owners={proposal.action_id: agent.pk})
            return _repeat_answer(raced[proposal.action_id], agent=agent, arguments=arguments)
        if result.rejected:
            raise ProposalRejected(400, "The proposal is not valid.", result.rejected[0]["errors"])
        _halt_after_ledger_lock(agent)
        # The ingest folded both events into the action (and stored it) under its lock.
        action = locked[proposal.action_id]
        if action.status == ActionStatus.PENDING_APPROVAL:
            # Approvers in chat hear of it once the proposal is committed.
            transaction.on_commit(lambda: action_pending_announce(action.action_id))
        return ProposalAnswer(action, created=True)
