"""POST /api/v1/actions and GET /api/v1/actions/{id}: every status, idempotency, 409, 423."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.actions.models import Action
from apps.audit.models import Event
from apps.fleet.services import agent_token_mint
from apps.policy.services import policy_version_create

pytestmark = pytest.mark.django_db

POLICY = """
rules:
  - id: no-destructive-db
    effect: deny
    description: never drop tables
    match: {action_type: "db.drop_*"}
  - id: k8s-ops
    effect: allow
    match: {action_type: "k8s.*", env: [prod, staging]}
"""


def _client(agent, scopes=("actions:propose",)):
    _, raw = agent_token_mint(agent=agent, scopes=list(scopes), ttl=timedelta(hours=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _propose(client, **fields):
    body = {
        "action_id": "act-1",
        "action_type": "k8s.restart_deployment",
        "target": "k8s://prod/payments/api",
        "env": "prod",
        "risk": "low",
        "confidence": 0.9,
        "rationale": "pods crash looping",
        "citations": [{"source": "loki", "ref": "api errors"}],
        "rollback_plan": "redeploy previous",
        "parameters": {"replicas": 3},
    }
    body.update(fields)
    return client.post("/api/v1/actions", body, format="json")


@pytest.fixture
def policy(db):
    return policy_version_create(source=POLICY)[0]


@pytest.mark.parametrize(
    ("mode", "fields", "status", "phrase"),
    [
        ("auto_low_risk", {}, "approved", "Approved by the policy"),
        ("suggest", {}, "pending_approval", "suggest mode"),
        ("auto_low_risk", {"risk": "high"}, "pending_approval", "2 distinct approvers needed"),
        (
            "auto_low_risk",
            {"action_type": "db.drop_table"},
            "denied",
            "no-destructive-db (v1): never drop tables",
        ),
        ("observe", {}, "recorded", "observe mode"),
    ],
)
def test_every_decision(agent, policy, mode, fields, status, phrase):
    agent.autonomy_mode = mode
    agent.save()
    response = _propose(_client(agent), **fields)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == status
    assert body["policy_version"] == 1
    assert any(phrase in r for r in body["reasons"]), body["reasons"]
    action = Action.objects.get(action_id="act-1")
    assert action.status == status
    assert set(Event.objects.filter(action_id="act-1").values_list("type", flat=True)) == {
        "proposal",
        "policy_decision",
    }


def test_same_arguments_same_answer_other_arguments_409(agent, policy):
    client = _client(agent)
    first = _propose(client)
    again = _propose(client, rationale="said differently")  # not an argument
    assert again.status_code == 200
    assert again.json() == first.json()
    changed = _propose(client, target="k8s://prod/payments/other")
    assert changed.status_code == 409
    assert "new action_id" in changed.json()["error"]
    assert Event.objects.filter(action_id="act-1", type="proposal").count() == 1


def test_a_halted_agent_gets_423_and_nothing_is_recorded(agent, policy):
    agent.halted, agent.halted_reason = True, "monthly LLM budget spent"
    agent.save()
    response = _propose(_client(agent))
    assert response.status_code == 423
    assert "monthly LLM budget spent" in response.json()["error"]
    assert not Action.objects.filter(action_id="act-1", proposal_event_id__isnull=False).exists()


def test_bad_proposals_get_field_errors(agent, policy):
    client = _client(agent)
    response = _propose(client, confidence=1.5)
    assert response.status_code == 400
    assert "confidence" in response.json()["detail"]
    empty = _propose(client, action_id="")
    assert (empty.status_code, list(empty.json()["detail"])) == (400, ["action_id"])
    body = {"action_type": "k8s.restart_deployment", "target": "k8s://prod/x", "risk": "low"}
    missing = client.post(
        "/api/v1/actions", {**body, "confidence": 0.5}, content_type="application/json"
    )
    assert missing.status_code == 400
    assert missing.json()["detail"] == {"action_id": ["This field is required."]}
    assert _propose(client, risk="extreme").status_code == 400
    assert (
        client.post("/api/v1/actions", "nope", content_type="application/json").status_code == 400
    )


def test_scopes_and_ownership(agent, other_agent, policy, viewer, client):
    assert _propose(_client(agent, scopes=("events:write",))).status_code == 403
    _propose(_client(agent))
    assert _propose(_client(other_agent)).status_code == 409  # someone else's action_id
    assert _client(other_agent).get("/api/v1/actions/act-1").status_code == 404
    client.force_login(viewer)
    assert client.get("/api/v1/actions/act-1").json()["status"] == "pending_approval"


def test_without_a_policy_everything_waits_for_a_person(agent):
    agent.autonomy_mode = "auto_low_risk"
    agent.save()
    body = _propose(_client(agent)).json()
    assert body["status"] == "pending_approval"
    assert body["policy_version"] is None


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="threads on the in-memory SQLite test database lock each other",
)
@pytest.mark.django_db(transaction=True)
def test_long_poll_returns_when_the_decision_arrives(agent, policy):
    from apps.audit.services.opsdash_events import opsdash_event_record

    client = _client(agent)
    _propose(client)

    def approve_soon():
        time.sleep(1.0)
        opsdash_event_record(
            agent=agent,
            event_type="approval",
            action_id="act-1",
            data={"decision": "approved", "by": "ada"},
        )

    threading.Thread(target=approve_soon).start()
    started = time.monotonic()
    body = client.get("/api/v1/actions/act-1", {"wait": 10}).json()
    elapsed = time.monotonic() - started
    assert body["status"] == "approved"
    assert 0.9 < elapsed < 5
    started = time.monotonic()
    assert client.get("/api/v1/actions/act-1", {"wait": 10}).json()["status"] == "approved"
    assert time.monotonic() - started < 1  # decided: no waiting


def test_long_polls_beyond_the_slots_answer_at_once(agent, policy):
    from apps.actions import api

    client = _client(agent)
    _propose(client)
    held = []
    while api._LONG_POLL_SLOTS.acquire(blocking=False):  # every slot taken by other polls
        held.append(1)
    try:
        started = time.monotonic()
        response = client.get("/api/v1/actions/act-1", {"wait": 10})
        assert time.monotonic() - started < 1
        assert (response.status_code, response["Retry-After"]) == (200, "2")
        assert response.json()["status"] == "pending_approval"
    finally:
        for _ in held:
            api._LONG_POLL_SLOTS.release()
    assert len(held) == 4  # WEB_THREADS 8 by default: half may sleep in a long-poll


def test_wait_must_be_a_number(agent, policy):
    client = _client(agent)
    _propose(client)
    response = client.get("/api/v1/actions/act-1", {"wait": "soon"})
    assert response.status_code == 400
    assert response.json()["detail"] == {"wait": ["A number of seconds."]}
    assert client.get("/api/v1/actions/nope", {"wait": 1}).status_code == 404
