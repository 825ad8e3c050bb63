from django.utils import timezone

from apps.core.tasks import opsdash_task
from apps.slo.promql import promql_refresh_all, promql_refresh_one


@opsdash_task("slo.evaluate_all", time_limit=120)
def slos_evaluate_all_task() -> int:
    from apps.slo.evaluate import slos_evaluate_all

    return slos_evaluate_all(now=timezone.now())


@opsdash_task("slo.promotion_suggest", time_limit=600)
def promotion_suggest_task() -> int:
    from apps.slo.autonomy import promotion_suggestions_notify

    return promotion_suggestions_notify(now=timezone.now())


# Prometheus being down is not raised: it is recorded on each PromQL SLO and the next beat, a
# minute later, starts again from where the rollups stopped.
@opsdash_task("slo.promql_refresh", time_limit=240)
def promql_refresh_task() -> dict[str, int]:
    results = promql_refresh_all()
    return {
        "slos": len(results),
        "rows_written": sum(r.written for r in results),
        "errors": sum(1 for r in results if r.error),
    }


@opsdash_task("slo.promql_refresh_one", time_limit=120)
def promql_refresh_one_task(slo_id: int) -> int:
    """Queue after a PromQL SLO is created or edited (after commit); 0 if it is gone."""
    result = promql_refresh_one(slo_id)
    return result.written if result else 0
