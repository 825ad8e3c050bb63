"""Cost and energy per action, for the cost_per_action and energy_per_action SLIs.

Today that is the LLM part: the sum over the action's llm_calls (apps.costs). Tool calls
(count x unit price) and a share of allocated infrastructure and of what no action can be tied
to are to be added here when billing allocation exists; until then an action's cost is its
LLM cost, and the SLO says so in its description.
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
