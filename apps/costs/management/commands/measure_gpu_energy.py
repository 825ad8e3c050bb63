"""`manage.py measure_gpu_energy [--since DATE] [--redo]`: integrate measured GPU power of
self-hosted models (COSTS_MEASURED_POWER) now, as the beat task does every few minutes."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.core.management.arguments import since_moment
from apps.costs.energy_services import measured_windows_run
from apps.slo.promql import PrometheusUnreachable, PromqlError


class Command(BaseCommand):
    help = (
        "Integrates DCGM_FI_DEV_POWER_USAGE over every closed window not yet integrated (all of "
        "them with --redo) and shares each window's Wh across the model's llm_calls by tokens. "
        "A window integrated again gives the same figures."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", type=since_moment, default=None, help="From this moment (UTC)."
        )
        parser.add_argument("--redo", action="store_true", help="Integrate done windows again.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            results = measured_windows_run(
                now=timezone.now(), since=options["since"], redo=options["redo"]
            )
        except (PrometheusUnreachable, PromqlError) as exc:
            raise CommandError(str(exc)) from exc
        if not results:
            self.stdout.write("No window to integrate (COSTS_MEASURED_POWER empty, or all done).")
            return
        measured = [r for r in results if r.status == "measured"]
        self.stdout.write(
            f"{len(results):,} windows: {len(measured):,} measured "
            f"({sum(r.energy_wh or 0 for r in measured):,.6f} Wh over "
            f"{sum(r.calls for r in measured):,} llm_calls), "
            f"{len(results) - len(measured):,} without power samples (their calls stay "
            "estimated)."
        )
