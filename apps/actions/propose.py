"""Agents ask before they act: POST /api/v1/actions evaluates the policy and records both."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from django.db import transaction
from django.utils import timezone
from msgspec import Meta

from apps.actions.models import Action
from apps.actions.services import actions_lock_for_ingest, proposal_arguments_hash
from apps.audit.canonical import encode_json, format_ts
from apps.audit.models import EventSource
from apps.audit.schemas import ProposalData
from apps.audit.services.event_prepare import msgspec_errors
from apps.audit.services.ingest import ALL_TYPES, event_batch_ingest
from apps.chatops.hooks import action_pending_announce
from apps.fleet.models import Agent
from apps.policy.engine import Proposal
from apps.policy.selectors import active_policy

# Event ids derived from the action id: a retried POST writes the very same events (duplicates).
_EVENT_NAMESPACE = uuid.UUID("6f1c2d4e-8a3b-4c5d-9e0f-1a2b3c4d5e6f")


class ProposalIn(ProposalData, forbid_unknown_fields=True):
    """A proposal as an agent sends it: the proposal event's data plus the action id."""

    action_id: Annotated[str, Meta(min_length=1, max_length=128)] = ""
    incident_id: Annotated[str, Meta(max_length=128)] | None = None
    agent_version: Annotated[str, Meta(max_length=64)] = ""
    prompt_version: Annotated[str, Meta(max_length=64)] = ""


class ProposalRejected(Exception):
    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


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
    if not proposal.action_id:
        raise ProposalRejected(
            400, "The proposal is not valid.", {"action_id": ["This field is required."]}
        )
    return proposal


def action_propose(
    *, agent: Agent, proposal: ProposalIn, now: datetime | None = None
) -> ProposalAnswer:
    """Decides a proposal once: a retry with the same arguments gets the same answer, other
    arguments under the same action_id get 409, a halted agent gets 423."""
    if agent.halted:
        raise ProposalRejected(
            423,
            f"{agent.slug} is halted: {agent.halted_reason or 'no reason given'}. "
            "Nothing may run until a person resumes it.",
        )
    now = now or timezone.now()
    data = msgspec.to_builtins(proposal)
    arguments = {k: data[k] for k in ProposalData.__struct_fields__ if k in data}
    with transaction.atomic():
        # Locking the action row serialises concurrent proposals of the same action_id.
        action = actions_lock_for_ingest(owners={proposal.action_id: agent.pk})[proposal.action_id]
        if action.agent_id != agent.pk:
            raise ProposalRejected(409, "This action_id belongs to another agent; use a new one.")
        if action.proposal_event_id is not None:
            if action.proposal_hash != proposal_arguments_hash(arguments):
                raise ProposalRejected(
                    409,
                    "This action_id was proposed with other arguments (type, target, env or "
                    "parameters). A changed proposal needs a new action_id.",
                )
            return ProposalAnswer(action, created=False)
        decision = active_policy().evaluate(
            Proposal(
                action_type=proposal.action_type,
                target=proposal.target,
                env=proposal.env,
                risk=proposal.risk,
                confidence=proposal.confidence,
                agent=agent.slug,
                team=agent.team.slug,
                autonomy_mode=agent.autonomy_mode,
                rollback_plan=proposal.rollback_plan,
                parameters=proposal.parameters,
            ),
            now=now,
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
        result = event_batch_ingest(
            items=[encode_json(i) for i in items],
            source=EventSource.OPSDASH,
            allowed_types=ALL_TYPES,
            agents_by_slug=lambda slug: agent if slug == agent.slug else None,
        )
        if result.rejected:
            raise ProposalRejected(400, "The proposal is not valid.", result.rejected[0]["errors"])
        action.refresh_from_db()
        if action.status == "pending_approval":  # approvers in Slack hear of it after commit
            transaction.on_commit(lambda: action_pending_announce(action.action_id))
        return ProposalAnswer(action, created=True)
