"""`manage.py rebuild_rollups`: recompute incidents, SLI facts and every SLO's rollups."""

from typing import Any

from django.core.management.base import BaseCommand

from apps.slo.rebuild import rollups_rebuild_all


class Command(BaseCommand):
    help = (
        "Recomputes the Incident read model, every SLI fact and every SLO's per-minute rollups "
        "from the read models, under the SLO consumer's lock; gives the numbers the incremental "
        "path gives, writing only the rows that differ. PromQL SLOs' rollups (written from "
        "Prometheus) are left alone."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = rollups_rebuild_all()
        self.stdout.write(
            f"Rebuilt {report.incidents:,} incidents, {report.facts:,} SLI facts and "
            f"{report.rollups:,} per-minute rollups of {report.slos:,} SLOs "
            f"(ledger seal #{report.head_seq}) in {report.seconds:.1f} s."
        )
        changed = report.changed
        written = (
            f"Rows written: {changed['incidents']:,} incidents, {changed['facts']:,} facts, "
            f"{changed['rollups']:,} rollups"
        )
        everything = (report.incidents, report.facts, report.rollups) == (
            changed["incidents"],
            changed["facts"],
            changed["rollups"],
        )
        self.stdout.write(
            written + ("." if everything else "; the rest already held these numbers.")
        )
        if options["verbosity"] > 1:
            for phase, seconds in report.phases.items():
                self.stdout.write(f"  {phase}: {seconds:.2f} s")
