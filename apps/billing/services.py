"""Billing imports: store an upload, claim it, and run it (stream, normalise, write, replace).

An import runs in one transaction: its rows are written (COPY on PostgreSQL), then for each
(provider, billing account, billing period) the file covered, the rows of earlier imports
are deleted, and the import is marked done. Readers therefore see the previous bill or the
restated one, never both and never half of one; a file-level error rolls everything back.
"""

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename
from psycopg.copy import QueuedLibpqWriter

from apps.billing.allocation import Allocator, allocate_import, db_time, import_allocator
from apps.billing.errors import FileLevelError
from apps.billing.models import (
    BillingImport,
    CostAllocation,
    CostLineItem,
    ImportSource,
    ImportStatus,
)
from apps.billing.normalise import NORMALISERS, Line, RowError
from apps.billing.normalise.parsing import WIDE
from apps.billing.pgcopy import COLUMNS as COPY_COLUMNS
from apps.billing.pgcopy import CopyEncoder
from apps.billing.readers import open_source
from apps.budgets.services import budgets_cloud_recount
from apps.costs.models import CloudEnergy

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
PeriodKey = tuple[str, str, datetime]
SQLITE_BATCH = 2000
PROGRESS_EVERY = 5000
ZERO = Decimal(0)
ROW_DATA_ERRORS = (ValueError, TypeError, ArithmeticError, RecursionError)
# An upload still queued after this had its task lost (a broker outage): it is queued again.
QUEUED_GRACE = timedelta(minutes=10)
# Longer than the import task's time limit: an import running this long has died.
RUNNING_LIMIT = timedelta(hours=3, minutes=15)


def upload_storage() -> FileSystemStorage:
    return FileSystemStorage(location=settings.BILLING_UPLOAD_DIR)


def billing_import_create(*, upload: UploadedFile, format: str, uploaded_by: Any) -> BillingImport:
    """Keeps the uploaded file and queues its import (after commit)."""
    from apps.billing.tasks import billing_import_process_task

    if format not in NORMALISERS:
        raise ValueError(f"unknown billing format {format!r}")
    original = Path(upload.name or "billing.csv").name
    try:
        safe = get_valid_filename(original)[:100]
    except SuspiciousFileOperation:  # nothing usable left in the name
        safe = "billing"
    stored = upload_storage().save(f"{timezone.now():%Y/%m}/{uuid.uuid4().hex}-{safe}", upload)
    billing_import = BillingImport.objects.create(
        file_name=original[:255],
        stored_name=stored,
        file_size=upload.size or 0,
        format=format,
        source=ImportSource.UPLOAD,
        uploaded_by=uploaded_by,
    )
    import_id = billing_import.pk
    # robust: a broker outage must not turn a stored upload into an error page; the sweep
    # queues it again.
    transaction.on_commit(lambda: billing_import_process_task.delay(import_id), robust=True)
    return billing_import


def billing_imports_sweep(*, now: datetime) -> dict[str, int]:
    """Queues again uploads whose task was lost, and fails imports whose process died (their
    transaction was rolled back, so nothing of them was written)."""
    from apps.billing.tasks import billing_import_process_task

    requeued = 0
    lost = BillingImport.objects.filter(
        status=ImportStatus.QUEUED,
        source=ImportSource.UPLOAD,
        created_at__lt=now - QUEUED_GRACE,
    ).values_list("pk", flat=True)
    for import_id in lost:
        billing_import_process_task.delay(import_id)
        requeued += 1
    failed = BillingImport.objects.filter(
        status=ImportStatus.RUNNING, started_at__lt=now - RUNNING_LIMIT
    ).update(
        status=ImportStatus.FAILED,
        finished_at=now,
        error_message=(
            "The import stopped before finishing (its worker or command was interrupted); "
            "nothing of it was written. Import the file again."
        ),
    )
    return {"requeued": requeued, "failed": failed}


def billing_import_claim(*, import_id: int) -> BillingImport | None:
    """Moves a queued import to running; None if it is gone or another worker has it."""
    # A conditional UPDATE, so a task delivered twice runs the import once.
    claimed = BillingImport.objects.filter(pk=import_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, started_at=timezone.now()
    )
    return BillingImport.objects.filter(pk=import_id).first() if claimed else None


def billing_import_process(*, import_id: int) -> BillingImport | None:
    """The Celery task's body: claim an uploaded import and run it on its stored file."""
    billing_import = billing_import_claim(import_id=import_id)
    if billing_import is None:
        return None
    path = Path(upload_storage().path(billing_import.stored_name))
    return billing_import_run(billing_import=billing_import, path=path)


def billing_import_start_local(*, path: Path, format: str) -> BillingImport:
    """An import row for a file the management command reads where it lies."""
    return BillingImport.objects.create(
        file_name=path.name[:255],
        file_size=path.stat().st_size if path.is_file() else 0,
        format=format,
        source=ImportSource.COMMAND,
        status=ImportStatus.RUNNING,
        started_at=timezone.now(),
    )


@dataclass
class _Tally:
    max_errors: int
    imported: int = 0
    rejected: int = 0
    totals: dict[str, Decimal] = field(default_factory=dict)
    periods: dict[PeriodKey, int] = field(default_factory=dict)
    # (provider, service, SKU, unit, region, category) of the rows: what energy is estimated
    # by (apps.costs.energy_services), gathered here rather than by a DISTINCT over the rows.
    energy_keys: set[tuple[str, ...]] = field(default_factory=set)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, row: int, line: int | None, column: str, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < self.max_errors:
            self.errors.append({"row": row, "line": line, "column": column, "message": message})


def billing_import_run(
    *, billing_import: BillingImport, path: Path, progress: Progress | None = None
) -> BillingImport:
    """Imports `path` into `billing_import` (already running); never raises for bad input:
    the outcome (done or failed, counts, errors) is on the returned row."""
    tally = _Tally(max_errors=settings.BILLING_MAX_ROW_ERRORS)
    try:
        with open_source(path) as source:
            normaliser = NORMALISERS[billing_import.format]()
            try:
                used = normaliser.bind(source.header)
            except FileLevelError as exc:
                raise FileLevelError(
                    f"{exc.message} {_format_hint(source.header, billing_import.format)}".strip(),
                    missing=exc.missing,
                ) from None

            def lines() -> Iterator[Line]:
                for row, line_no, values, problem in source.rows(used):
                    if progress is not None and row % PROGRESS_EVERY == 0:
                        progress(source.position(), source.total)
                    if values is None:
                        tally.reject(row, line_no, "", problem or "unreadable row")
                        continue
                    values.append(None)  # what columns the file lacks read as
                    try:
                        line = normaliser.normalise(values)
                        _check_periods(line, normaliser)
                    except RowError as exc:
                        tally.reject(row, line_no, exc.column, exc.message)
                        continue
                    except ROW_DATA_ERRORS as exc:
                        # A value no parser above foresaw: the row is refused, not the file.
                        logger.warning("billing import %s row %s: %r", billing_import.pk, row, exc)
                        tally.reject(row, line_no, "", f"unreadable row ({type(exc).__name__})")
                        continue
                    tally.imported += 1
                    currency = line.billing_currency
                    tally.totals[currency] = WIDE.add(
                        tally.totals.get(currency, ZERO), line.billed_cost
                    )
                    key = (line.provider, line.billing_account_id, line.billing_period_start)
                    tally.periods[key] = tally.periods.get(key, 0) + 1
                    tally.energy_keys.add(
                        (
                            line.provider,
                            line.service_name,
                            line.sku_id,
                            line.consumed_unit,
                            line.region_id,
                            line.charge_category,
                        )
                    )
                    yield line

            with transaction.atomic():
                # First: a recompute waits for this import, and a rule changed from here on
                # is applied by the recompute it queues.
                allocator = import_allocator()
                _write(billing_import.pk, lines(), allocator)
                replaced = _replace_previous(billing_import.pk, tally.periods)
                # In the same transaction: whoever reads the bill reads its allocations and
                # its energy too.
                allocate_import(billing_import.pk, allocator)
                _estimate_energy(billing_import.pk, tally.energy_keys)
                # Cloud-spend budgets move with the bill (down too, when it is restated).
                budgets_cloud_recount()
                _finish(billing_import, tally, replaced=replaced)
            if progress is not None:
                progress(source.total, source.total)
    except FileLevelError as exc:
        _fail(billing_import, exc.message)
    except Exception as exc:
        logger.exception("billing import %s failed", billing_import.pk)
        _fail(
            billing_import,
            f"The import stopped on an unexpected error ({type(exc).__name__}); nothing was "
            "written. The server log has the details.",
        )
    return billing_import


def _estimate_energy(import_id: int, keys: set[tuple[str, ...]]) -> None:
    """The rows' energy, in the import's transaction: a bill is never visible without it."""
    if connection.vendor != "postgresql":
        return
    from apps.costs.energy_services import cloud_energy_compute

    cloud_energy_compute(import_id=import_id, fresh=True, keys=keys)


def _check_periods(line: Line, normaliser: Any) -> None:
    if line.charge_period_end < line.charge_period_start:
        raise RowError(
            normaliser.column_name("charge_end") if "charge_end" in normaliser.columns else "",
            "the charge period ends before it starts",
        )
    if line.billing_period_end <= line.billing_period_start:
        raise RowError(
            normaliser.column_name("billing_end") if "billing_end" in normaliser.columns else "",
            "the billing period ends before it starts",
        )


def _format_hint(header: list[str], tried: str) -> str:
    fits = [
        name for name, cls in NORMALISERS.items() if name != tried and not cls().missing(header)
    ]
    if fits:
        return f"The columns look like the '{fits[0]}' format: import it as that."
    shown = ", ".join(header[:8]) + (" …" if len(header) > 8 else "")
    return f"The file's columns are: {shown or '(none)'}."


def _write(import_id: int, lines: Iterable[Line], allocator: Allocator) -> None:
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        table = CostLineItem._meta.db_table
        sql = f"COPY {table} ({', '.join(COPY_COLUMNS)}) FROM STDIN"
        # A sender thread: the next rows are parsed while PostgreSQL takes the last ones.
        with (
            connection.connection.cursor() as cursor,
            cursor.copy(sql, writer=_SenderThread(cursor)) as copy,
        ):
            for chunk in CopyEncoder(import_id, allocator.owner_text).chunks(lines):
                copy.write(chunk)
        return
    batch: list[CostLineItem] = []
    for line in lines:
        team_id, agent_id = allocator.owner_ids(line)
        batch.append(
            CostLineItem(
                billing_import_id=import_id, team_id=team_id, agent_id=agent_id, **line._asdict()
            )
        )
        if len(batch) >= SQLITE_BATCH:
            CostLineItem.objects.bulk_create(batch)
            batch = []
    if batch:
        CostLineItem.objects.bulk_create(batch)


class _SenderThread(QueuedLibpqWriter):
    """psycopg's queued COPY writer with a short queue: its default holds up to 1,024 blocks
    of 128 KB, which a slow server would let grow to 128 MB; 32 blocks is 4 MB."""

    def __init__(self, cursor: Any) -> None:
        super().__init__(cursor)
        self._queue = type(self._queue)(maxsize=32)


def _replace_previous(import_id: int, periods: dict[PeriodKey, int]) -> int:
    """Deletes earlier imports' rows for every period key this import covered."""
    replaced = 0
    for provider, account, start in sorted(periods):
        if connection.vendor == "postgresql":
            # Two imports of the same bill at once: the lock makes the later one see and
            # delete the earlier one's committed rows, so the bill is never doubled.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    [f"billing-period:{provider}|{account}|{start.isoformat()}"],
                )
        # SQL, not QuerySet.delete(): with allocations and energy rows pointing at the rows,
        # the ORM would load every replaced row into memory to cascade.
        where = (
            "provider = %s AND billing_account_id = %s AND billing_period_start = %s "
            "AND billing_import_id <> %s"
        )
        params: list[Any] = [provider, account, db_time(start), import_id]
        lines, shares = CostLineItem._meta.db_table, CostAllocation._meta.db_table
        energy = CloudEnergy._meta.db_table
        with connection.cursor() as cursor:
            sub = f"SELECT id FROM {lines} WHERE {where}"  # noqa: S608
            cursor.execute(f"DELETE FROM {shares} WHERE line_item_id IN ({sub})", params)  # noqa: S608
            cursor.execute(f"DELETE FROM {energy} WHERE line_item_id IN ({sub})", params)  # noqa: S608
            cursor.execute(f"DELETE FROM {lines} WHERE {where}", params)  # noqa: S608
            replaced += cursor.rowcount
    return replaced


def _finish(billing_import: BillingImport, tally: _Tally, *, replaced: int) -> None:
    billing_import.rows_imported = tally.imported
    billing_import.rows_rejected = tally.rejected
    billing_import.rows_replaced = replaced
    billing_import.totals = {
        cur: decimal_text(total) for cur, total in sorted(tally.totals.items())
    }
    billing_import.periods = [
        {
            "provider": provider,
            "billing_account_id": account,
            "billing_period_start": start.isoformat(),
            "rows": rows,
        }
        for (provider, account, start), rows in sorted(tally.periods.items())
    ]
    billing_import.row_errors = tally.errors
    billing_import.row_errors_total = tally.rejected
    billing_import.finished_at = timezone.now()
    if tally.imported == 0 and tally.rejected:
        billing_import.status = ImportStatus.FAILED
        billing_import.error_message = (
            f"Every row was rejected ({tally.rejected:,}); see the row errors."
        )
    else:
        billing_import.status = ImportStatus.DONE
        billing_import.error_message = ""
    billing_import.save()


def decimal_text(amount: Decimal) -> str:
    """Exact and plain: 1234.56, 100, -0.000001 (never 1E+2)."""
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _fail(billing_import: BillingImport, message: str) -> None:
    billing_import.status = ImportStatus.FAILED
    billing_import.error_message = message
    billing_import.rows_imported = 0
    billing_import.rows_replaced = 0
    billing_import.totals = {}
    billing_import.periods = []
    billing_import.finished_at = timezone.now()
    billing_import.save()
