from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.billing.models import ImportStatus
from apps.billing.normalise import NORMALISERS
from apps.billing.services import billing_import_run, billing_import_start_local

ERRORS_PRINTED = 10


class Command(BaseCommand):
    help = (
        "Import a billing file (CSV, gzip'd CSV or Parquet) normalised to FOCUS columns. "
        "Re-importing the same provider / billing account / billing period replaces it."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file")
        parser.add_argument("--format", required=True, choices=sorted(NORMALISERS))

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        billing_import = billing_import_start_local(path=path, format=options["format"])
        bar: tqdm[Any] | None = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                unit = "rows" if _is_parquet(path) else "B"
                bar = tqdm(
                    total=total,
                    unit=unit,
                    unit_scale=True,
                    desc=path.name,
                    disable=options["verbosity"] < 1,
                )
            bar.update(max(done - bar.n, 0))

        try:
            billing_import_run(billing_import=billing_import, path=path, progress=progress)
        finally:
            if bar is not None:
                bar.close()
        if billing_import.status == ImportStatus.FAILED and not billing_import.row_errors_total:
            raise CommandError(f"{path.name}: {billing_import.error_message}")
        for error in billing_import.row_errors[:ERRORS_PRINTED]:
            where = f"line {error['line']}" if error.get("line") else f"row {error['row']}"
            column = f", {error['column']}" if error.get("column") else ""
            self.stderr.write(f"  {where}{column}: {error['message']}")
        if billing_import.row_errors_total > ERRORS_PRINTED:
            self.stderr.write(
                f"  … {billing_import.row_errors_total - ERRORS_PRINTED:,} more row errors "
                f"(import #{billing_import.pk} on the Billing imports page)."
            )
        totals = ", ".join(f"{cur} {amount}" for cur, amount in billing_import.totals.items())
        self.stdout.write(
            f"Import #{billing_import.pk}: {billing_import.rows_imported:,} rows imported, "
            f"{billing_import.rows_rejected:,} rows rejected, "
            f"{billing_import.rows_replaced:,} earlier rows replaced. "
            f"Total BilledCost: {totals or 'none'}."
        )
        if billing_import.status == ImportStatus.FAILED:
            raise CommandError(f"{path.name}: {billing_import.error_message}")


def _is_parquet(path: Path) -> bool:
    """Parquet progress counts rows; CSV counts bytes read from disk (compressed or not)."""
    with path.open("rb") as probe:
        return probe.read(4) == b"PAR1"
