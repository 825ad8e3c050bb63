"""Cost and energy per action, for the cost_per_action and energy_per_action SLIs.

The cost issue fills this in; until then no action has a known cost, so those SLOs count
nothing and show "no data".
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class ActionCost:
    cost_usd: Decimal | None = None
    energy_wh: Decimal | None = None


def action_costs(action_ids: Iterable[str]) -> dict[str, ActionCost]:
    """The known cost and energy of each action, by action_id (absent: not known)."""
    return {}
