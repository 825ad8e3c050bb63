"""Slack switched on against a local fake, recorded payloads, and signed requests."""

import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client
from slack_sdk.signature import SignatureVerifier

from apps.actions.propose import ProposalIn, action_propose
from apps.chatops.models import SlackUserLink
from opsdash.celery import app as celery_app
from tests.chatops.fake_slack import BOT_TOKEN, FakeSlack

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0APPROVALS"
SITE_URL = "https://opsdash.example.test"
PAYLOADS = Path(__file__).parent / "payloads"
INTERACTIONS_URL = "/integrations/slack/interactions"


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    yield fake
    fake.close()


@pytest.fixture
def slack_on(settings: Any, fake_slack: FakeSlack) -> Iterator[FakeSlack]:
    """The Slack settings set, the Web API pointed at the fake, Celery tasks run in-process."""
    settings.SLACK_SIGNING_SECRET = SIGNING_SECRET
    settings.SLACK_BOT_TOKEN = BOT_TOKEN
    settings.SLACK_APPROVALS_CHANNEL = CHANNEL
    settings.SLACK_API_URL = fake_slack.api_url
    settings.SITE_URL = SITE_URL
    saved = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = celery_app.conf.task_eager_propagates = True
    yield fake_slack
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = saved


def recorded(name: str, **changes: Any) -> dict[str, Any]:
    """A recorded payload, with the few values a test sets (who clicked, which action)."""
    payload = json.loads((PAYLOADS / f"{name}.json").read_text())
    payload = copy.deepcopy(payload)
    if "user" in changes:
        payload["user"]["id"] = changes.pop("user")
    if "action_id" in changes:
        for action in payload.get("actions", []):
            action["value"] = changes["action_id"]
        if "view" in payload:
            meta = json.loads(payload["view"]["private_metadata"])
            meta["action_id"] = changes["action_id"]
            payload["view"]["private_metadata"] = json.dumps(meta)
        changes.pop("action_id")
    if "response_url" in changes:
        url = changes.pop("response_url")
        if "view" in payload:
            meta = json.loads(payload["view"]["private_metadata"])
            meta["response_url"] = url
            payload["view"]["private_metadata"] = json.dumps(meta)
        else:
            payload["response_url"] = url
    if "reason" in changes:
        payload["view"]["state"]["values"]["reason"]["reason"]["value"] = changes.pop("reason")
    payload.update(changes)
    return payload


def signed_headers(body: str, *, timestamp: int | None = None, secret: str = SIGNING_SECRET):
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"HTTP_X_SLACK_REQUEST_TIMESTAMP": ts, "HTTP_X_SLACK_SIGNATURE": signature}


@pytest.fixture
def post_slack(django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """POSTs a payload the way Slack does (form-encoded, signed, no CSRF token or cookie);
    what runs after the commit runs."""
    client = Client(enforce_csrf_checks=True)

    def post(payload: dict[str, Any] | str | None, *, raw: str | None = None, **headers: Any):
        if raw is None:
            text = payload if isinstance(payload, str) else json.dumps(payload)
            raw = f"payload={quote(text)}"
        headers = {**signed_headers(raw), **headers}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                INTERACTIONS_URL,
                data=raw,
                content_type="application/x-www-form-urlencoded",
                **headers,
            )

    return post


@pytest.fixture
def propose(django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """Proposes an action as the agent would; what runs after the commit runs."""

    def make(agent: Any, action_id: str = "act-1", risk: str = "medium", **fields: Any) -> Any:
        proposal = {
            "action_id": action_id,
            "action_type": "k8s.restart_deployment",
            "target": "k8s://prod/payments/api",
            "env": "prod",
            "risk": risk,
            "confidence": 0.8,
            "rationale": "Pods crash-loop since the 14:02 deploy; a restart cleared it twice.",
            "rollback_plan": "redeploy the previous image",
            "parameters": {"replicas": 3},
            **fields,
        }
        with django_capture_on_commit_callbacks(execute=True):
            answer = action_propose(agent=agent, proposal=ProposalIn(**proposal))
        return answer.action

    return make


@pytest.fixture
def ada(make_person: Callable[..., Any]) -> Any:
    user = make_person("ada", "approver")
    SlackUserLink.objects.create(slack_user_id="U0ADA0001", user=user)
    return user


@pytest.fixture
def omar(make_person: Callable[..., Any]) -> Any:
    user = make_person("omar", "approver")
    SlackUserLink.objects.create(slack_user_id="U0OMAR002", user=user)
    return user
