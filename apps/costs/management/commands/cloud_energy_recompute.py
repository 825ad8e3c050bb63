"""`manage.py cloud_energy_recompute`: estimate every billing line item's energy again, after
COSTS_CLOUD_ENERGY, COSTS_PUE or the grid table changed."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db.models import Sum

from apps.costs.energy_selectors import cloud_energy_missing
from apps.costs.energy_services import cloud_energy_recompute
from apps.costs.models import CloudEnergy


class Command(BaseCommand):
    help = (
        "Recomputes the estimated energy (Wh) and emissions (gCO2e) of every billing line item "
        "from the current coefficients (Cloud Carbon Footprint defaults and COSTS_CLOUD_ENERGY). "
        "Safe to run again: a second run writes the same figures."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        written = cloud_energy_recompute()
        wh = CloudEnergy.objects.aggregate(wh=Sum("energy_wh"))["wh"] or 0
        missing = sum(m.line_items for m in cloud_energy_missing())
        self.stdout.write(
            f"Estimated {written:,} line items: {wh:,.3f} Wh in all; {missing:,} usage line "
            "items have no energy estimate (the Energy page says why)."
        )
