import gzip
import json
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.audit.models import EventSource
from apps.audit.services.ingest import ALL_TYPES, agent_lookup_cache, event_batch_ingest

CHUNK_LINES = 1000


class Command(BaseCommand):
    help = (
        "Import audit events from a JSONL file (optionally .gz), one event per line, with the "
        "same validation as the API. Rejected lines go to a report file; re-importing is a no-op."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file")
        parser.add_argument(
            "--report", help="Where rejected lines go (default: FILE.rejected.jsonl)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        report_path = Path(options["report"] or f"{path}.rejected.jsonl")
        opener = gzip.open if path.suffix == ".gz" else open
        totals = {"accepted": 0, "duplicates": 0, "rejected": 0, "lines": 0}
        lookup = agent_lookup_cache()
        size = path.stat().st_size
        report = _LazyReport(report_path)
        with (
            opener(path, "rb") as source,
            tqdm(
                total=size,
                unit="B",
                unit_scale=True,
                desc=path.name,
                disable=options["verbosity"] < 1,
            ) as bar,
        ):
            chunk: list[bytes] = []
            first_line = 1
            # Progress follows the bytes read from disk, compressed or not.
            raw_file: Any = getattr(source, "fileobj", source)
            for line in source:
                totals["lines"] += 1
                stripped = line.strip()
                chunk.append(stripped)
                if len(chunk) >= CHUNK_LINES:
                    self._flush(chunk, first_line, totals, report, lookup)
                    first_line += len(chunk)
                    chunk = []
                    bar.update(raw_file.tell() - bar.n)
            if chunk:
                self._flush(chunk, first_line, totals, report, lookup)
            bar.update(size - bar.n)
        report.close()
        if totals["rejected"] == 0:
            report_path.unlink(missing_ok=True)  # a stale report from an earlier run
        self.stdout.write(
            f"{totals['lines']} lines: {totals['accepted']} accepted, {totals['duplicates']} duplicates, "
            f"{totals['rejected']} rejected"
            + (f" (see {report_path})" if totals["rejected"] else "")
        )

    def _flush(
        self,
        chunk: list[bytes],
        first_line: int,
        totals: dict[str, int],
        report: "_LazyReport",
        lookup: Any,
    ) -> None:
        blank = {i for i, line in enumerate(chunk) if not line}
        items = [line for line in chunk if line]
        line_numbers = [first_line + i for i in range(len(chunk)) if i not in blank]
        result = event_batch_ingest(
            items=items, source=EventSource.IMPORT, allowed_types=ALL_TYPES, agents_by_slug=lookup
        )
        totals["accepted"] += result.accepted
        totals["duplicates"] += result.duplicates
        totals["rejected"] += len(result.rejected)
        for rejection in result.rejected:
            index = rejection["index"]
            report.write(
                json.dumps(
                    {
                        "line": line_numbers[index],
                        "id": rejection["id"],
                        "errors": rejection["errors"],
                        "text": items[index].decode("utf-8", "replace")[:2000],
                    }
                )
                + "\n"
            )


class _LazyReport:
    """The rejected-lines file, created only when a line is rejected."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[str] | None = None

    def write(self, text: str) -> None:
        if self.file is None:
            self.file = self.path.open("w")
        self.file.write(text)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
