"""`manage.py pull_anthropic_costs --since DATE [--until DATE]`: billed cost from Anthropic."""

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.costs.billed.client import NOT_CONFIGURED, earliest_day
from apps.costs.billed.services import anthropic_costs_pull
from apps.costs.models import PullStatus, PullTrigger


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"{text!r} is not a date: use YYYY-MM-DD (a UTC day).") from exc


class Command(BaseCommand):
    help = (
        "Pulls Anthropic's billed cost per UTC day, workspace, model, API key and cost type "
        "from the Admin API (ANTHROPIC_ADMIN_KEY) and replaces what opsdash held for those "
        "days. Safe to run again: the days are replaced, never added to."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=_day, required=True, help="First UTC day.")
        parser.add_argument(
            "--until", type=_day, default=None, help="Last UTC day, included (default: today)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since: date = options["since"]
        last: date = options["until"] or timezone.now().date()
        if last < since:
            raise CommandError(f"--until {last} is before --since {since}.")
        first = earliest_day(timezone.now().date())
        if since < first:
            raise CommandError(
                f"--since {since} is too early: Anthropic reports cost from {first} on (from "
                "2026-01-01, and for the last 365 days)."
            )
        pull = anthropic_costs_pull(
            since=since, until=last + timedelta(days=1), trigger=PullTrigger.COMMAND
        )
        if pull is None:
            raise CommandError(NOT_CONFIGURED)
        if pull.status != PullStatus.SUCCEEDED:
            raise CommandError(pull.message)
        self.stdout.write(
            f"Pulled {since} to {last}: {pull.rows:,} cost and {pull.usage_rows:,} usage rows "
            f"from {pull.pages:,} pages, "
            f"USD {pull.billed_usd:,.2f} billed (replacing what was held for those days)."
        )
