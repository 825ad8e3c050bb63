from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from apps.accounts.roles import ADMIN, FINOPS, SRE_LEAD, VIEWER, has_role, user_roles


def navigation(request: HttpRequest) -> dict[str, Any]:
    """The sidebar and the top bar. Both are built only if the template renders them: htmx
    fragments (the queue polls every few seconds) do not, and cost none of their queries."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from apps.core.selectors import fleet_state

    state = fleet_state()
    return {
        "nav_sections": SimpleLazyObject(lambda: _sections(user, state)),
        "roles": sorted(user_roles(user)),
        "fleet_state": state,
    }


def _sections(user: Any, state: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    sections: list[tuple[str, list[tuple[str, str]]]] = []
    if has_role(user, VIEWER):
        sections.append(
            (
                "Overview",
                [
                    ("home", "Fleet"),
                    ("slo:list", "SLOs"),
                    ("audit:events", "Audit log"),
                    ("audit:ledger", "Ledger"),
                ],
            )
        )
        queue = f"Approval queue ({state.pending})" if state.pending else "Approval queue"
        sections.append(("Actions", [("actions:queue", queue), ("actions:list", "Actions")]))
        sections.append(("Governance", [("policy:versions", "Policy")]))
    cost = []
    if has_role(user, FINOPS, SRE_LEAD):
        cost.append(("costs:explorer", "Cost explorer"))
        cost.append(("costs:energy", "Energy"))
        cost.append(("budgets:list", "Budgets"))
        cost.append(("budgets:halted", "Halted agents"))
    if has_role(user, FINOPS):
        cost.append(("billing:imports", "Billing imports"))
        cost.append(("billing:rules", "Allocation rules"))
        cost.append(("billing:chargeback", "Chargeback"))
        cost.append(("costs:reconciliation", "LLM reconciliation"))
    if user_roles(user):  # anyone with a role may read the price table
        cost.append(("costs:prices", "Prices & rates"))
    if cost:
        sections.append(("Cost", cost))
    account = [("notifications:inbox", "Notifications"), ("accounts:tokens", "My API tokens")]
    if has_role(user, ADMIN):
        account.insert(0, ("fleet:agents", "Agents & tokens"))
    sections.append(("Settings", account))
    return sections
