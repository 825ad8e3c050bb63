from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.audit.models import Event
from apps.audit.services.ledger import ledger_verify_record


class Command(BaseCommand):
    help = "Verify the audit ledger: every event hash, every Merkle root, the whole chain."

    def handle(self, *args: Any, **options: Any) -> None:
        bar = tqdm(
            total=Event.objects.count(), desc="events", unit="ev", disable=options["verbosity"] < 1
        )
        outcome = ledger_verify_record(triggered_by="verify_audit", progress=bar.update)
        bar.close()
        report = outcome.report
        if report.ok:
            self.stdout.write(
                f"Ledger intact: {report.seals_checked} seals, {report.events_checked} events, "
                f"head #{report.head_seq}."
            )
            return
        for problem in report.problems:
            self.stderr.write(
                f"  - {problem.message} (seal #{problem.seq}, batch {problem.batch_id})"
            )
        raise CommandError(f"Ledger BROKEN. First bad seal: {outcome.describe_first()}")
