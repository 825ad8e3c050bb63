from typing import Any

from apps.actions.models import Action, ActionStatus
from apps.fleet.models import Agent


def fleet_state() -> dict[str, Any]:
    """The numbers in the top bar; three indexed counts."""
    return {
        "halted": Agent.objects.halted().count(),
        "pending": Action.objects.filter(status=ActionStatus.PENDING_APPROVAL).count(),
        "violations": Action.objects.violations().count(),
        "firing_alerts": 0,
    }
