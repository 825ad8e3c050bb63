from apps.core.tasks import TRANSIENT_ERRORS, opsdash_task
from apps.costs.billed.client import AdminApiError


@opsdash_task(
    "fleet.anthropic_key_sync", retry_on=(*TRANSIENT_ERRORS, AdminApiError), max_retries=10
)
def anthropic_key_sync_task(agent_id: int) -> str:
    """Queued after a halt or resume commits; sets the key to what the agent is now (a halt
    and a quick resume queue two tasks, and both leave the key as the agent's last state)."""
    from apps.fleet.services import anthropic_key_sync

    return anthropic_key_sync(agent_id=agent_id)
