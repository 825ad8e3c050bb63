from typing import Any

from apps.actions.models import Action, ActionStatus
from apps.fleet.models import Agent
from apps.slo.models import SloAlert


def fleet_state() -> dict[str, Any]:
    """The numbers in the top bar; four small counts."""
    return {
        "halted": Agent.objects.halted().count(),
        "pending": Action.objects.filter(status=ActionStatus.PENDING_APPROVAL).count(),
        "violations": Action.objects.violations().count(),
        "firing_alerts": SloAlert.objects.filter(resolved_at__isnull=True).count(),
    }
