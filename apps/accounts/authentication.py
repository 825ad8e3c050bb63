"""Bearer tokens for agents (opsa_…) and people (opsp_…)."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.core.db import CompiledLookup
from apps.core.secrets import AGENT_TOKEN_PREFIX, PERSONAL_TOKEN_PREFIX, token_digest

# last_used_at is a hint for people, not an audit record: write it at most once a minute so
# the ingest hot path does not update the token row on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class _Expiring(Protocol):
    revoked_at: datetime | None
    expires_at: datetime | None


T = TypeVar("T", bound=_Expiring)


@dataclass
class AgentPrincipal:
    """request.user for a request made with an agent token."""

    agent: Any
    token: Any
    scopes: frozenset[str] = field(default_factory=frozenset)
    is_authenticated: bool = True
    is_agent: bool = True
    is_superuser: bool = False
    is_staff: bool = False
    is_active: bool = True

    @property
    def username(self) -> str:
        return f"agent:{self.agent.slug}"

    def __str__(self) -> str:
        return self.username


def _agent_token_by_digest(digest: str) -> Any:
    from apps.fleet.models import AgentToken

    return AgentToken.objects.select_related("agent", "agent__team").filter(digest=digest)


def _personal_token_by_digest(digest: str) -> Any:
    from apps.accounts.models import PersonalToken

    return PersonalToken.objects.select_related("user").filter(digest=digest)


# Every agent request authenticates: the lookups are compiled once, not per request.
_AGENT_TOKEN = CompiledLookup(_agent_token_by_digest)
_PERSONAL_TOKEN = CompiledLookup(_personal_token_by_digest)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected 'Bearer <token>'."
            )
        raw = parts[1]
        if raw.startswith(AGENT_TOKEN_PREFIX):
            return self._agent(raw)
        if raw.startswith(PERSONAL_TOKEN_PREFIX):
            return self._person(raw)
        raise exceptions.AuthenticationFailed("Unknown token.")

    def authenticate_header(self, request: Request) -> str:
        return self.keyword

    def _agent(self, raw: str) -> tuple[AgentPrincipal, Any]:
        token = self._check(_AGENT_TOKEN.first(token_digest(raw)))
        touch_last_used(token)
        return AgentPrincipal(agent=token.agent, token=token, scopes=frozenset(token.scopes)), token

    def _person(self, raw: str) -> tuple[Any, Any]:
        token = self._check(_PERSONAL_TOKEN.first(token_digest(raw)))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This person's account is disabled.")
        touch_last_used(token)
        return token.user, token

    @staticmethod
    def _check(token: T | None) -> T:
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This token was revoked.")
        if token.expires_at is not None and token.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed("This token has expired; mint a new one.")
        return token


def touch_last_used(token: Any) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        type(token).objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An agent token (opsa_…) or a personal token (opsp_…).",
        }
