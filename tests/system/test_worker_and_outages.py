"""Ingest with a real worker, a real broker, and the outages DESIGN rule 1 talks about."""

import os
from datetime import timedelta

import pytest
import requests
from django.db import connection

from apps.audit.models import EventDailyCount
from apps.audit.services.derived import derived_catch_up
from apps.fleet.services import agent_token_mint
from tests.conftest import event, free_port, port_open, service_missing
from tests.system.servers import base_env, celery_worker, db_url, gunicorn, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        service_missing("PostgreSQL (set DATABASE_URL=postgres://…)")


@pytest.fixture
def redis_broker() -> str:
    if not port_open("127.0.0.1", 6379):
        service_missing("Redis on 127.0.0.1:6379")
    import redis

    url = REDIS_URL.rsplit("/", 1)[0] + "/14"
    redis.Redis.from_url(url).flushdb()
    return url


def _auth(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def _daily_total(agent) -> int:
    return sum(EventDailyCount.objects.filter(agent=agent).values_list("events", flat=True))


def test_a_real_worker_applies_derived_work_after_commit(postgres_only, redis_broker, agent):
    _, raw = agent_token_mint(agent=agent, scopes=["events:write"], ttl=timedelta(hours=1))
    env = base_env(DATABASE_URL=db_url(), CELERY_BROKER_URL=redis_broker)
    with gunicorn(env) as url, celery_worker(env):
        for _ in range(3):
            response = requests.post(
                f"{url}/api/v1/events",
                json=[event() for _ in range(10)],
                headers=_auth(raw),
                timeout=10,
            )
            assert response.json()["accepted"] == 10
        # 30 notes + the token_change event written when the token was minted.
        assert wait_for(lambda: _daily_total(agent) == 31), _daily_total(agent)
        health = requests.get(f"{url}/healthz", timeout=5).json()
        assert health["derived_lag"] == {"daily_counts": 0, "slo": 0, "tool_call_counts": 0}
    # Running the catch-up again (a retried task, or the sweep) counts nothing twice.
    derived_catch_up()
    assert _daily_total(agent) == 31


def test_ingest_succeeds_with_the_broker_down_and_the_sweep_catches_up(postgres_only, agent):
    _, raw = agent_token_mint(agent=agent, scopes=["events:write"], ttl=timedelta(hours=1))
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    env = base_env(DATABASE_URL=db_url(), CELERY_BROKER_URL=dead_broker)
    with gunicorn(env) as url:
        response = requests.post(
            f"{url}/api/v1/events", json=[event() for _ in range(4)], headers=_auth(raw), timeout=30
        )
        assert response.status_code == 200
        assert response.json()["accepted"] == 4
    assert _daily_total(agent) == 0
    derived_catch_up()  # what the periodic sweep runs
    assert _daily_total(agent) == 5


def test_database_down_answers_503_with_retry_after(agent):
    dead_db = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    env = base_env(DATABASE_URL=dead_db)
    with gunicorn(env) as url:
        response = requests.post(
            f"{url}/api/v1/events", json=[event()], headers=_auth("opsa_whatever"), timeout=30
        )
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert "database is unavailable" in response.json()["error"]
        page = requests.get(f"{url}/audit/events/", timeout=30, allow_redirects=False)
        assert page.status_code in (503, 302)
