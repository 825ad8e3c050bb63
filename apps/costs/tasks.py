from datetime import datetime

from apps.core.tasks import opsdash_task


@opsdash_task("costs.llm_calls_reprice", time_limit=3600)
def llm_calls_reprice_task(since: str | None = None) -> dict[str, int]:
    """Queued after a price row dated in the past is added (after commit); idempotent."""
    from apps.costs.services import llm_calls_reprice

    result = llm_calls_reprice(since=datetime.fromisoformat(since) if since else None)
    return {"created": result.created, "repriced": result.repriced}


@opsdash_task("costs.anthropic_costs_pull", time_limit=1800)
def anthropic_costs_pull_task(pull_id: int) -> None:
    """A pull FinOps asked for ("Pull now"); returns quietly if another worker claimed it."""
    from apps.costs.billed.services import anthropic_costs_pull_run

    anthropic_costs_pull_run(pull_id=pull_id)


@opsdash_task("costs.anthropic_billed_pull", time_limit=1800)
def anthropic_billed_pull_task() -> None:
    """Daily: the last ANTHROPIC_COST_PULL_DAYS days again; nothing without an Admin key."""
    from django.conf import settings

    from apps.costs.billed.services import anthropic_costs_pull, pull_range_default
    from apps.costs.models import PullTrigger

    days = pull_range_default(days=settings.ANTHROPIC_COST_PULL_DAYS)
    anthropic_costs_pull(since=days.since, until=days.until, trigger=PullTrigger.SCHEDULE)


@opsdash_task("costs.measured_energy_windows", time_limit=600, retry_on=())
def measured_energy_windows_task() -> dict[str, int]:
    """Integrates closed windows of measured GPU power; a failed run is retried by the next
    beat (the windows it did not reach are still open in the table)."""
    from django.utils import timezone

    from apps.costs.energy_services import measured_windows_run
    from apps.slo.promql import PrometheusUnreachable, PromqlError

    try:
        results = measured_windows_run(now=timezone.now())
    except (PrometheusUnreachable, PromqlError) as exc:
        import logging

        logging.getLogger(__name__).warning("measured energy: %s", exc)
        return {"windows": 0, "failed": 1}
    return {
        "windows": len(results),
        "measured": sum(1 for r in results if r.status == "measured"),
        "refreshed_actions": sum(r.refreshed_actions for r in results),
    }
