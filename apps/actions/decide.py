"""People decide pending actions: approve (one vote of the required number), or reject."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from apps.actions.models import Action, ActionStatus
from apps.audit.services.opsdash_events import opsdash_event_record
from apps.fleet.models import Agent


class DecisionRefused(Exception):
    """The person cannot decide this now; the message says why and what happened instead."""


@dataclass
class DecisionOutcome:
    action: Action
    final: bool
    votes: int
    required: int


def _approvers_so_far(action: Action) -> list[str]:
    return sorted(
        {a["by"] for a in action.approvals if a.get("decision") in ("approve", "approved")}
    )


def agent_owner_usernames(agent: Agent) -> set[str]:
    """The agent's owners and its team's owners: answerable for what the agent does."""
    users = get_user_model().objects.filter(Q(owned_agents=agent) | Q(owned_teams=agent.team_id))
    return set(users.values_list("username", flat=True))


def action_decide(
    *, action_id: str, user: Any, approve: bool, reason: str = "", comment: str = ""
) -> DecisionOutcome:
    """Records one person's decision under the action's row lock.

    Two approvers clicking at once are serialised by the lock: the second sees the first's
    outcome and is told, never a second decision. A rejection needs a reason. An approval is
    a vote bound to the proposal's argument hash; the last vote required makes it `approved`.
    """
    username = user.get_username()
    reason, comment = reason.strip(), comment.strip()
    if not approve and not reason:
        raise DecisionRefused("A rejection needs a reason the agent's owners can act on.")
    with transaction.atomic():
        action = Action.objects.select_for_update().filter(action_id=action_id).first()
        if action is None:
            raise DecisionRefused(f"No action {action_id!r}.")
        if action.status != ActionStatus.PENDING_APPROVAL:
            who = f" by {action.decided_by}" if action.decided_by else ""
            raise DecisionRefused(f"Already decided: {action.get_status_display().lower()}{who}.")
        voters = _approvers_so_far(action)
        required = max(action.approvers_required, 1)
        if approve and username in voters:
            raise DecisionRefused(
                f"You already approved this; it needs {required} distinct approvers."
            )
        votes = len(voters) + (1 if approve else 0)
        final = not approve or votes >= required
        if approve and final and action.separation_of_duties:
            owners = agent_owner_usernames(action.agent)
            if {*voters, username} <= owners:
                # The vote counts, but one approver from outside the owners is still needed.
                final = False
                required = votes + 1
        decision = ("approved" if final else "approve") if approve else "rejected"
        opsdash_event_record(
            agent=action.agent,
            event_type="approval",
            action_id=action.action_id,
            incident_id=action.incident_id,
            data={
                "decision": decision,
                "by": username,
                "reason": reason,
                "comment": comment,
                "proposal_hash": action.proposal_hash,
            },
        )
        action.refresh_from_db()
        return DecisionOutcome(action=action, final=final, votes=votes, required=required)
