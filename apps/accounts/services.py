from datetime import timedelta
from typing import TYPE_CHECKING

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import PersonalToken
from apps.accounts.roles import ALL_ROLES
from apps.core.secrets import PERSONAL_TOKEN_PREFIX, token_digest, token_generate

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def roles_ensure() -> None:
    for role in ALL_ROLES:
        Group.objects.get_or_create(name=role)


@transaction.atomic
def personal_token_mint(
    *, user: "User", name: str, ttl: timedelta | None
) -> tuple[PersonalToken, str]:
    """A token for a person; it carries exactly that person's role rights, checked per request."""
    raw = token_generate(PERSONAL_TOKEN_PREFIX)
    token = PersonalToken.objects.create(
        user=user,
        name=name or "API token",
        digest=token_digest(raw),
        prefix=raw[: len(PERSONAL_TOKEN_PREFIX) + 6],
        expires_at=timezone.now() + ttl if ttl else None,
    )
    return token, raw


def personal_token_revoke(*, token: PersonalToken) -> PersonalToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
