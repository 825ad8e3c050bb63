from typing import Any

from rest_framework.permissions import BasePermission

from apps.accounts.roles import has_role


def agent_has_scope(request: Any, scope: str) -> bool:
    user = request.user
    return bool(getattr(user, "is_agent", False) and scope in user.scopes)


class AgentScope(BasePermission):
    """Allows agent tokens that carry `scope`; people are judged by `person_roles`."""

    scope: str = ""
    person_roles: tuple[str, ...] = ()

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if getattr(user, "is_agent", False):
            if self.scope in user.scopes:
                return True
            self.message = f"This agent token lacks the '{self.scope}' scope."
            return False
        if self.person_roles and has_role(user, *self.person_roles):
            return True
        self.message = self.people_message
        return False

    people_message = "You do not have a role that allows this."


def scope_permission(scope: str, *person_roles: str, people_message: str = "") -> type:
    """A permission class for one agent scope, optionally open to people with some roles."""
    return type(
        f"Scope_{scope.replace(':', '_')}",
        (AgentScope,),
        {
            "scope": scope,
            "person_roles": person_roles,
            "people_message": people_message or AgentScope.people_message,
        },
    )


class HasRole(BasePermission):
    roles: tuple[str, ...] = ()

    def has_permission(self, request: Any, view: Any) -> bool:
        return has_role(request.user, *self.roles)
