"""`manage.py cloud_energy_recompute`: estimate every billing line item's energy again, after
COSTS_CLOUD_ENERGY, COSTS_PUE or the grid table changed."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db.models import Count, Q, Sum

from apps.costs.cloud_energy import Kind
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
        totals = CloudEnergy.objects.aggregate(
            wh=Sum("energy_wh"),
            missing=Count("pk", filter=Q(energy_wh__isnull=True, basis__kind=Kind.UNCLASSIFIED)),
        )
        self.stdout.write(
            f"Estimated {written:,} line items: {totals['wh'] or 0:,.3f} Wh in all; "
            f"{totals['missing']:,} line items have no energy estimate "
            "(unclassified usage: see the Energy page)."
        )
