from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.slo.models import Slo
from apps.slo.openslo import openslo_export, openslo_export_all


class Command(BaseCommand):
    help = "Print SLOs as OpenSLO v1 YAML (all, or one with --slo)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--slo", help="One SLO's slug.")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options.get("slo")
        if slug:
            slo = (
                Slo.objects.select_related("team", "agent", "agent__team").filter(slug=slug).first()
            )
            if slo is None:
                raise CommandError(f"There is no SLO “{slug}”.")
            self.stdout.write(openslo_export([slo]), ending="")
            return
        self.stdout.write(openslo_export_all(), ending="")
