from datetime import datetime

from apps.core.tasks import opsdash_task


@opsdash_task("costs.llm_calls_reprice", time_limit=3600)
def llm_calls_reprice_task(since: str | None = None) -> dict[str, int]:
    """Queued after a price row dated in the past is added (after commit); idempotent."""
    from apps.costs.services import llm_calls_reprice

    result = llm_calls_reprice(since=datetime.fromisoformat(since) if since else None)
    return {"created": result.created, "repriced": result.repriced}
