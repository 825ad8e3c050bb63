import logging
import threading
import time

from apps.audit.services.derived import derived_catch_up
from apps.core.tasks import opsdash_task

logger = logging.getLogger(__name__)

# One catch-up per process per second is enough: a catch-up applies every seal committed
# before it runs, so batches committed while one is pending ride along with it.
COALESCE_SECONDS = 1.0
_pending_until = 0.0
_pending_lock = threading.Lock()


@opsdash_task("audit.derived_catch_up", time_limit=600)
def derived_catch_up_task(seal_seq: int | None = None) -> int:
    return derived_catch_up()


@opsdash_task("audit.derived_sweep", time_limit=600)
def derived_sweep_task() -> int:
    """The safety net: whatever a lost or never-sent message missed is applied here."""
    return derived_catch_up()


@opsdash_task("audit.ledger_verify", time_limit=3600)
def ledger_verify_task(triggered_by: str = "schedule") -> bool:
    from apps.audit.services.ledger import ledger_verify_record

    return ledger_verify_record(triggered_by=triggered_by).report.ok


def queue_derived_after_commit(seal_seq: int) -> None:
    """Called after the ingest commit. A broker outage must not fail the ingest: log and go on."""
    global _pending_until
    with _pending_lock:
        now = time.monotonic()
        if now < _pending_until:
            return  # a catch-up queued by this process runs after this commit
        _pending_until = now + COALESCE_SECONDS
    try:
        derived_catch_up_task.apply_async(args=[seal_seq], countdown=COALESCE_SECONDS, retry=False)
    except Exception as exc:  # any broker error; the sweep catches up
        with _pending_lock:
            _pending_until = 0.0
        logger.warning("could not queue derived work for seal %s: %s", seal_seq, exc)
