from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import personal_token_mint
from apps.policy.selectors import compiled_version, shadow_config_forget


@pytest.fixture(autouse=True)
def _fresh_policy_caches() -> Iterator[None]:
    """The shadow configuration and compiled versions are cached per process: a test's rows
    are rolled back, so no cache may outlive the test that filled it."""
    shadow_config_forget()
    compiled_version.cache_clear()
    yield
    shadow_config_forget()
    compiled_version.cache_clear()


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
