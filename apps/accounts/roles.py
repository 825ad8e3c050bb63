"""Roles are Django groups; a superuser holds every role."""

from typing import Any

VIEWER = "viewer"
APPROVER = "approver"
SRE_LEAD = "sre_lead"
FINOPS = "finops"
ADMIN = "admin"
ALL_ROLES = (VIEWER, APPROVER, SRE_LEAD, FINOPS, ADMIN)

ROLE_DESCRIPTIONS = {
    VIEWER: "Reads dashboards and the audit log.",
    APPROVER: "Works the approval queue.",
    SRE_LEAD: "Owns SLOs and agent autonomy.",
    FINOPS: "Owns cost, budgets and halts.",
    ADMIN: "Manages teams, agents, tokens and people.",
}


def user_roles(user: Any) -> frozenset[str]:
    """The roles a person holds; cached on the user object for the request."""
    if user is None or not getattr(user, "is_authenticated", False):
        return frozenset()
    if getattr(user, "is_agent", False):
        return frozenset()
    cached = getattr(user, "_opsdash_roles", None)
    if cached is not None:
        return cached
    if user.is_superuser:
        roles = frozenset(ALL_ROLES)
    else:
        roles = frozenset(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        # Every role can read what a viewer reads.
        if roles:
            roles = roles | {VIEWER}
    user._opsdash_roles = roles
    return roles


def has_role(user: Any, *roles: str) -> bool:
    """True when the person holds any of the roles (admin holds them all)."""
    held = user_roles(user)
    return ADMIN in held or any(role in held for role in roles)
