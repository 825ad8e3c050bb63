import logging

from apps.audit.services.derived import derived_catch_up
from apps.core.tasks import opsdash_task

logger = logging.getLogger(__name__)


@opsdash_task("audit.derived_catch_up", time_limit=600)
def derived_catch_up_task(seal_seq: int | None = None) -> int:
    return derived_catch_up()


@opsdash_task("audit.derived_sweep", time_limit=600)
def derived_sweep_task() -> int:
    """The safety net: whatever a lost or never-sent message missed is applied here."""
    return derived_catch_up()


def queue_derived_after_commit(seal_seq: int) -> None:
    """Called after the ingest commit. A broker outage must not fail the ingest: log and go on."""
    try:
        derived_catch_up_task.apply_async(args=[seal_seq], retry=False)
    except Exception as exc:  # any broker error; the sweep catches up
        logger.warning("could not queue derived work for seal %s: %s", seal_seq, exc)


@opsdash_task("audit.ledger_verify", time_limit=3600)
def ledger_verify_task(triggered_by: str = "schedule") -> bool:
    from apps.audit.services.ledger import ledger_verify_record

    return ledger_verify_record(triggered_by=triggered_by).report.ok
