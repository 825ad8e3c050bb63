"""One path through a real Celery worker and Redis: a decision's callback leaves after commit."""

import json
import os

import pytest
from django.db import connection

from apps.actions.propose import ProposalIn, action_propose
from apps.notifications.models import CallbackDelivery
from apps.policy.services import policy_version_create
from tests.conftest import port_open, service_missing
from tests.system.servers import base_env, celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def redis_broker():
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


def _db_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_a_real_worker_delivers_the_policy_decision(redis_broker, agent, receiver):
    agent.autonomy_mode = "auto_low_risk"
    agent.callback_url, agent.callback_secret = receiver.url + "/cb", "w" * 64
    agent.save()
    policy_version_create(
        source="rules:\n  - id: k8s\n    effect: allow\n    match: {action_type: 'k8s.*'}\n"
    )
    env = base_env(DATABASE_URL=_db_url(), CELERY_BROKER_URL=redis_broker)
    with celery_worker(env):
        answer = action_propose(
            agent=agent,
            proposal=ProposalIn(
                action_id="act-w",
                action_type="k8s.restart_deployment",
                target="k8s://prod/payments/api",
                env="prod",
                risk="low",
                confidence=0.9,
            ),
        )
        assert answer.action.status == "approved"
        assert wait_for(lambda: len(receiver.requests) == 1, timeout=30), receiver.requests
        assert wait_for(
            lambda: CallbackDelivery.objects.filter(delivered_at__isnull=False).count() == 1
        )
    assert json.loads(receiver.requests[0].body)["status"] == "approved"
    assert CallbackDelivery.objects.get().attempts == 1
