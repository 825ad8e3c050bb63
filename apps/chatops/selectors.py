from dataclasses import dataclass

from apps.actions.decide import agent_owner_usernames
from apps.actions.models import Action


@dataclass(frozen=True)
class ApprovalProgress:
    voters: list[str]
    required: int

    @property
    def votes(self) -> int:
        return len(self.voters)


def approval_progress(action: Action) -> ApprovalProgress:
    """Votes so far and votes needed, by the rules action_decide applies: distinct approvers,
    and under separation of duties one more when every voter so far owns the agent."""
    voters = sorted(
        {a["by"] for a in action.approvals if a.get("decision") in ("approve", "approved")}
    )
    required = max(action.approvers_required, 1)
    if (
        action.separation_of_duties
        and voters
        and len(voters) >= required
        and set(voters) <= agent_owner_usernames(action.agent)
    ):
        required = len(voters) + 1
    return ApprovalProgress(voters=voters, required=required)
