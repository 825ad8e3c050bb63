from functools import cached_property

from apps.actions.models import Action, ActionStatus
from apps.fleet.models import Agent
from apps.slo.models import SloAlert


class FleetState:
    """The numbers in the top bar. Each is counted only when a template shows it, so the
    htmx fragments (the queue polls every few seconds) cost none of these queries."""

    @cached_property
    def halted(self) -> int:
        return Agent.objects.halted().count()

    @cached_property
    def pending(self) -> int:
        return Action.objects.filter(status=ActionStatus.PENDING_APPROVAL).count()

    @cached_property
    def violations(self) -> int:
        return Action.objects.violations().count()

    @cached_property
    def firing_alerts(self) -> int:
        return SloAlert.objects.filter(resolved_at__isnull=True).count()


def fleet_state() -> FleetState:
    return FleetState()
