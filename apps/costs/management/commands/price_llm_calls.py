"""`manage.py price_llm_calls [--since DATE]`: (re)price stored llm_calls from the price table."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.core.management.arguments import since_moment
from apps.costs.selectors import unpriced_models
from apps.costs.services import llm_calls_reprice


class Command(BaseCommand):
    help = (
        "Writes the usage row of every stored llm_call that has none, and reprices price-table "
        "rows whose price changed (a new row, a correction) and unpriced rows the table can now "
        "price. Costs reported by agents are never overwritten. Safe to run again: a second run "
        "changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", type=since_moment, default=None, help="Only calls from this moment on (UTC)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = llm_calls_reprice(since=options["since"])
        self.stdout.write(
            f"Examined {result.examined:,} llm_calls: {result.created:,} usage rows written, "
            f"{result.repriced:,} repriced, {result.unchanged:,} unchanged; "
            f"{result.unpriced:,} have no price."
        )
        for row in unpriced_models():
            self.stdout.write(
                f"  unpriced: {row.provider}/{row.model}: {row.calls:,} calls "
                f"({row.first_ts:%Y-%m-%d} to {row.last_ts:%Y-%m-%d}); add its price on the "
                "price page, then run this again."
            )
