"""Personas and SLO payloads shared by the SLO API, OpenSLO and form tests (imported by them,
not a conftest, so other SLO test modules are unaffected)."""

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import personal_token_mint


@pytest.fixture(name="person_api")
def person_api_fixture(make_person: Callable[..., Any]) -> Callable[..., APIClient]:
    """An API client authenticated with a personal token of a new person with `roles`."""

    def make(username: str, *roles: str) -> APIClient:
        user = make_person(username, *roles)
        _, raw = personal_token_mint(user=user, name="tests", ttl=None)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


@pytest.fixture(name="lead")
def lead_fixture(person_api: Callable[..., APIClient]) -> APIClient:
    return person_api("sam", "sre_lead")


@pytest.fixture(name="reader")
def reader_fixture(person_api: Callable[..., APIClient]) -> APIClient:
    return person_api("vera", "viewer")


def ttp(**overrides: Any) -> dict[str, Any]:
    """A valid time-to-propose SLO for the triage-bot agent."""
    body: dict[str, Any] = {
        "slug": "triage-ttp",
        "name": "Triage proposes within 2 minutes",
        "sli": "time_to_propose",
        "scope": "agent",
        "agent": "triage-bot",
        "objective": "0.95",
        "threshold": 120,
    }
    body.update(overrides)
    return body
