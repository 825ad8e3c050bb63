from django.utils import timezone

from apps.core.tasks import opsdash_task


@opsdash_task("slo.evaluate_all", time_limit=120)
def slos_evaluate_all_task() -> int:
    from apps.slo.evaluate import slos_evaluate_all

    return slos_evaluate_all(now=timezone.now())


@opsdash_task("slo.promotion_suggest", time_limit=600)
def promotion_suggest_task() -> int:
    from apps.slo.autonomy import promotion_suggestions_notify

    return promotion_suggestions_notify(now=timezone.now())
