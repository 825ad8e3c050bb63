from apps.core.tasks import opsdash_task


# A 1 GB bill takes minutes; the import is claimed once, so a redelivery does nothing.
@opsdash_task("billing.import_process", time_limit=3 * 3600)
def billing_import_process_task(import_id: int) -> str:
    from apps.billing.services import billing_import_process

    billing_import = billing_import_process(import_id=import_id)
    return billing_import.status if billing_import else "skipped"


@opsdash_task("billing.imports_sweep", time_limit=120)
def billing_imports_sweep_task() -> dict[str, int]:
    from django.utils import timezone

    from apps.billing.services import billing_imports_sweep

    return billing_imports_sweep(now=timezone.now())


# Idempotent: the range's allocations are deleted and recomputed in one transaction.
@opsdash_task("billing.allocation_run", time_limit=3 * 3600)
def allocation_run_task(run_id: int) -> str:
    from apps.billing.rules import allocation_run_process

    run = allocation_run_process(run_id=run_id)
    return run.status if run else "skipped"
