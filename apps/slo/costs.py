"""Cost and energy per action, for the cost_per_action and energy_per_action SLIs.

The SLIs count what is known when the action's calls are stored: the sum over its llm_calls
(apps.costs). The action page also shows its tool calls and its share of the day's untied
costs (apps.costs.actions); those are left out here on purpose: they move when bills arrive
weeks later, and an SLO's past minutes must not change with them.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from apps.costs.selectors import action_llm_totals


@dataclass(frozen=True)
class ActionCost:
    cost_usd: Decimal | None = None
    energy_wh: Decimal | None = None


def action_costs(action_ids: Iterable[str]) -> dict[str, ActionCost]:
    """The known cost and energy of each action, by action_id (absent: not known).

    An action without llm_calls is absent (nothing is known of its cost); one with an unpriced
    call has its energy (always estimated) but no cost."""
    return {
        action_id: ActionCost(cost_usd=totals.cost_usd, energy_wh=totals.energy_wh)
        for action_id, totals in action_llm_totals(action_ids).items()
    }
