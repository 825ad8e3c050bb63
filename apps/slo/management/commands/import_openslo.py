from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.slo.openslo import MAX_BYTES, OpensloInvalid, openslo_import


class Command(BaseCommand):
    help = (
        "Create or update SLOs from an OpenSLO v1 YAML file (by metadata.name). All or "
        "nothing: one invalid SLO document refuses the file."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="OpenSLO v1 YAML; '-' reads standard input.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check and report; save nothing."
        )
        parser.add_argument(
            "--by", default="import_openslo", help="Recorded as who created the SLOs."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["file"]
        if name == "-":
            import sys

            raw = sys.stdin.buffer.read(MAX_BYTES + 1)
        else:
            path = Path(name)
            try:
                with path.open("rb") as handle:
                    # One byte over the limit is enough to refuse; never read a huge file.
                    raw = handle.read(MAX_BYTES + 1)
            except OSError as exc:
                raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
        try:
            result = openslo_import(raw, by=options["by"], dry_run=options["dry_run"])
        except OpensloInvalid as exc:
            for error in exc.errors:
                self.stderr.write(f"{name}: {error}")
            raise CommandError(
                f"{name} is not valid OpenSLO for opsdash; nothing was saved."
            ) from exc
        prefix = "Would have" if result.dry_run else ""
        for word, slugs in (
            ("created", result.created),
            ("updated", result.updated),
            ("left unchanged", result.unchanged),
        ):
            if slugs:
                verb = f"{prefix} {word}".strip()
                self.stdout.write(f"{verb[0].upper()}{verb[1:]}: {', '.join(slugs)}")
        for note in result.skipped:
            self.stdout.write(f"Skipped {note}")
        if not (result.created or result.updated or result.unchanged):
            self.stdout.write("No SLO documents in the file.")
