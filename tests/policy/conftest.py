from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import personal_token_mint


@pytest.fixture
def sre(make_person: Callable[..., Any]) -> Any:
    return make_person("sam", "sre_lead")


@pytest.fixture
def person_api(make_person: Callable[..., Any]) -> Callable[..., APIClient]:
    """An API client authenticated with a personal token of a new person with `roles`."""

    def make(username: str, *roles: str) -> APIClient:
        user = make_person(username, *roles)
        _, raw = personal_token_mint(user=user, name="tests", ttl=None)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make
