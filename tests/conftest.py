"""Shared personas, agents, tokens and event builders for the whole suite."""

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from apps.accounts.roles import ALL_ROLES
from apps.accounts.services import roles_ensure
from apps.audit.canonical import format_ts
from apps.fleet.models import Agent, Team
from apps.fleet.services import agent_token_mint

REQUIRE_SERVICES = os.environ.get("OPSDASH_REQUIRE_SERVICES", "") in ("1", "true", "yes")
# Longer than a whole run of the suite takes (about 8 minutes in CI).
MIDNIGHT_MARGIN = timedelta(minutes=15)
SAFE_AFTER_MIDNIGHT = timedelta(minutes=2)


def pytest_sessionstart(session: pytest.Session) -> None:
    """A run started just before midnight UTC waits for the new day. Many tests put events
    "now" and read today's figures (daily budgets, today's costs), some of them through a
    server in another process whose clock cannot be frozen: a run that crossed midnight would
    find yesterday's events outside today's period."""
    import time

    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    # Events are put up to a minute before "now": a day's first minutes are no safer.
    if now < today + SAFE_AFTER_MIDNIGHT:
        start = today + SAFE_AFTER_MIDNIGHT
    elif today + timedelta(days=1) - now < MIDNIGHT_MARGIN:
        start = today + timedelta(days=1) + SAFE_AFTER_MIDNIGHT
    else:
        return
    wait = (start - now).total_seconds()
    print(f"\nWaiting {wait:.0f} s for midnight UTC to pass before the tests start.")
    time.sleep(wait)


@pytest.fixture(autouse=True)
def _fresh_policy_caches() -> Iterator[None]:
    """The shadow configuration and compiled versions are cached per process: a test's rows
    are rolled back, so no cache may outlive the test that filled it."""
    from apps.policy.selectors import compiled_version, shadow_config_forget

    shadow_config_forget()
    compiled_version.cache_clear()
    yield
    shadow_config_forget()
    compiled_version.cache_clear()


def service_missing(what: str) -> None:
    """In CI a missing service fails the test; on a laptop it skips with the reason."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {what}")
    pytest.skip(f"service missing: {what}")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def collected_static(django_db_blocker: Any) -> None:
    """Pages render with the production static storage, which needs collectstatic's manifest.

    Run every session (it copies only what changed) so a new or edited file under static/ is
    never missing from a manifest left by an earlier run."""
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture
def roles(db: Any) -> None:
    roles_ensure()


@pytest.fixture
def make_person(django_user_model: Any, roles: None) -> Callable[..., Any]:
    def make(username: str, *role_names: str, password: str = "pw-for-tests-1") -> Any:
        user = django_user_model.objects.create_user(username=username, password=password)
        for role in role_names:
            assert role in ALL_ROLES
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def viewer(make_person: Callable[..., Any]) -> Any:
    return make_person("vera", "viewer")


@pytest.fixture
def admin_person(make_person: Callable[..., Any]) -> Any:
    return make_person("alex", "admin")


@pytest.fixture
def outsider(make_person: Callable[..., Any]) -> Any:
    return make_person("otto")


@pytest.fixture
def team(db: Any) -> Team:
    return Team.objects.create(slug="platform", name="Platform")


@pytest.fixture
def agent(team: Team) -> Agent:
    return Agent.objects.create(slug="triage-bot", team=team, autonomy_mode="suggest")


@pytest.fixture
def other_agent(team: Team) -> Agent:
    return Agent.objects.create(slug="k8s-healer", team=team, autonomy_mode="auto_low_risk")


@pytest.fixture
def agent_token(agent: Agent) -> str:
    _, raw = agent_token_mint(agent=agent, scopes=["events:write"], ttl=timedelta(days=1))
    return raw


@pytest.fixture
def agent_client(agent_token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {agent_token}")
    return client


def event(
    agent: str = "triage-bot",
    type: str = "note",
    data: dict[str, Any] | None = None,
    *,
    ts: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A valid event as an agent would send it."""
    item: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "ts": format_ts(ts or datetime.now(UTC) - timedelta(seconds=5)),
        "agent": agent,
        "type": type,
        "data": data if data is not None else {"text": "checked the dashboard"},
    }
    item.update(fields)
    return item


def llm_call(agent: str = "triage-bot", **data: Any) -> dict[str, Any]:
    payload = {
        "model": "claude-sonnet-4-5",
        "input_tokens": 1200,
        "output_tokens": 300,
        "latency_ms": 1500,
        "request": "Summarise the alert",
        "response": "Pods are crash looping",
    }
    payload.update(data)
    return event(agent, "llm_call", payload)


def post_batch(client: APIClient, items: Any, **kwargs: Any) -> Any:
    return client.post("/api/v1/events", items, format="json", **kwargs)


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Queued tasks run in the test's thread: no broker, the same code path as a worker."""
    from opsdash.celery import app

    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def redis_broker() -> Iterator[str]:
    """This process queues tasks on a real, emptied Redis (REDIS_URL), for a worker to take."""
    from django.db import connection

    if connection.vendor != "postgresql":
        service_missing("PostgreSQL (set DATABASE_URL=postgres://…)")
    if not port_open("127.0.0.1", 6379):
        service_missing("Redis on 127.0.0.1:6379")
    import redis

    from opsdash.celery import app

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis.Redis.from_url(url).flushdb()
    before = app.conf.broker_url
    # Connection and producer pools are built lazily for the configured broker: reset them.
    app.conf.broker_url, app._pool, app.amqp._producer_pool = url, None, None
    try:
        yield url
    finally:
        app.conf.broker_url, app._pool, app.amqp._producer_pool = before, None, None
