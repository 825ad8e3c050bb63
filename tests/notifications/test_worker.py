"""One path through a real Celery worker and Redis: a decision's callback leaves after commit."""

import json

import pytest

from apps.actions.propose import ProposalIn, action_propose
from apps.notifications.models import CallbackDelivery
from apps.policy.services import policy_version_create
from tests.system.servers import base_env, celery_worker, db_url, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_a_real_worker_delivers_the_policy_decision(redis_broker, agent, receiver):
    agent.autonomy_mode = "auto_low_risk"
    agent.callback_url, agent.callback_secret = receiver.url + "/cb", "w" * 64
    agent.save()
    policy_version_create(
        source="rules:\n  - id: k8s\n    effect: allow\n    match: {action_type: 'k8s.*'}\n"
    )
    env = base_env(DATABASE_URL=db_url(), CELERY_BROKER_URL=redis_broker)
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
