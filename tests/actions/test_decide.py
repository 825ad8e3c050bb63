"""People decide: votes towards the required approvers, reasons for rejections, one outcome."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.actions.decide import DecisionRefused, action_decide
from apps.actions.models import Action
from apps.actions.propose import ProposalIn, action_propose
from apps.audit.models import Event
from apps.fleet.services import agent_token_mint

pytestmark = pytest.mark.django_db


def _pending(agent, action_id="act-1", risk="medium"):
    answer = action_propose(
        agent=agent,
        proposal=ProposalIn(
            action_id=action_id,
            action_type="k8s.restart_deployment",
            target="k8s://prod/payments/api",
            env="prod",
            risk=risk,
            confidence=0.8,
            rollback_plan="redeploy",
            parameters={"replicas": 3},
        ),
    )
    assert answer.action.status == "pending_approval"
    return answer.action


def test_one_approver_decides_a_medium_risk_action(agent, make_person):
    ada = make_person("ada", "approver")
    _pending(agent)
    outcome = action_decide(action_id="act-1", user=ada, approve=True, comment="looks right")
    assert (outcome.final, outcome.votes, outcome.required) == (True, 1, 1)
    action = Action.objects.get(action_id="act-1")
    assert (action.status, action.decided_by) == ("approved", "ada")
    event = Event.objects.get(action_id="act-1", type="approval")
    assert event.data["proposal_hash"] == action.proposal_hash
    assert event.data["comment"] == "looks right"


def test_high_risk_needs_two_distinct_people(agent, make_person):
    ada, omar = make_person("ada", "approver"), make_person("omar", "approver")
    _pending(agent, risk="high")
    first = action_decide(action_id="act-1", user=ada, approve=True)
    assert (first.final, first.votes, first.required) == (False, 1, 2)
    assert Action.objects.get(action_id="act-1").status == "pending_approval"
    with pytest.raises(DecisionRefused, match="already approved"):
        action_decide(action_id="act-1", user=ada, approve=True)
    second = action_decide(action_id="act-1", user=omar, approve=True)
    assert second.final
    action = Action.objects.get(action_id="act-1")
    assert (action.status, action.decided_by) == ("approved", "omar")
    assert [a["by"] for a in action.approvals] == ["ada", "omar"]


def test_a_rejection_needs_a_reason_and_is_final(agent, make_person):
    ada, omar = make_person("ada", "approver"), make_person("omar", "approver")
    _pending(agent)
    with pytest.raises(DecisionRefused, match="needs a reason"):
        action_decide(action_id="act-1", user=ada, approve=False, reason="  ")
    action_decide(action_id="act-1", user=ada, approve=False, reason="check the database first")
    action = Action.objects.get(action_id="act-1")
    assert (action.status, action.decision_reasons) == ("rejected", ["check the database first"])
    with pytest.raises(DecisionRefused, match="Already decided: rejected by ada"):
        action_decide(action_id="act-1", user=omar, approve=True)


def test_the_api_for_people(agent, make_person, client):
    ada = make_person("ada", "approver")
    make_person("vera", "viewer")
    _pending(agent)
    client.login(username="vera", password="pw-for-tests-1")
    assert (
        client.post(
            "/api/v1/actions/act-1/approve", {}, content_type="application/json"
        ).status_code
        == 403
    )
    client.force_login(ada)
    response = client.post("/api/v1/actions/act-1/reject", {}, content_type="application/json")
    assert response.status_code == 409
    assert "needs a reason" in response.json()["error"]
    response = client.post(
        "/api/v1/actions/act-1/approve", {"comment": "ok"}, content_type="application/json"
    )
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["votes"]) == ("approved", 1)
    assert (
        client.post("/api/v1/actions/act-1/maybe", {}, content_type="application/json").status_code
        == 404
    )


def test_the_agent_sees_the_decision(agent, make_person):
    _pending(agent)
    action_decide(action_id="act-1", user=make_person("ada", "approver"), approve=True)
    _, raw = agent_token_mint(agent=agent, scopes=["actions:propose"], ttl=timedelta(hours=1))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/actions/act-1").json()["status"] == "approved"


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="threads on the in-memory SQLite test database lock each other",
)
@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_the_same_moment_make_one_outcome(agent, make_person):
    from django.db import connection

    ada, omar = make_person("ada", "approver"), make_person("omar", "approver")
    _pending(agent)
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def decide(user, approve):
        try:
            barrier.wait()
            action_decide(action_id="act-1", user=user, approve=approve, reason="no")
            results[user.username] = "decided"
        except DecisionRefused as exc:
            results[user.username] = str(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=decide, args=(ada, True)),
        threading.Thread(target=decide, args=(omar, False)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes = sorted(results.values(), key=lambda text: text != "decided")
    assert outcomes[0] == "decided"
    assert outcomes[1].startswith("Already decided")  # the second person sees what happened
    assert Event.objects.filter(action_id="act-1", type="approval").count() == 1


def test_a_malformed_decision_body_is_a_400(agent, make_person, client):
    _pending(agent)
    client.force_login(make_person("ada", "approver"))
    assert (
        client.post(
            "/api/v1/actions/act-1/approve", [1, 2], content_type="application/json"
        ).status_code
        == 400
    )
    assert (
        client.post(
            "/api/v1/actions/act-1/reject", {"reason": "x" * 5000}, content_type="application/json"
        ).status_code
        == 400
    )
    assert Action.objects.get(action_id="act-1").status == "pending_approval"


def _load_policy(source: str) -> None:
    from apps.policy.services import policy_version_create

    policy_version_create(source=source, created_by="test")


def test_separation_of_duties_needs_an_approver_outside_the_owners(agent, make_person):
    _load_policy("approvers: {medium: 1, separation_of_duties: true}\n")
    owner, outsider = make_person("olga", "approver"), make_person("ada", "approver")
    team_owner = make_person("tom", "approver")
    agent.owners.add(owner)
    agent.team.owners.add(team_owner)
    action = _pending(agent)
    assert action.separation_of_duties
    first = action_decide(action_id="act-1", user=owner, approve=True)
    assert (first.final, first.votes, first.required) == (False, 1, 2)
    second = action_decide(action_id="act-1", user=team_owner, approve=True)
    assert (second.final, second.votes, second.required) == (False, 2, 3)
    assert Action.objects.get(action_id="act-1").status == "pending_approval"
    third = action_decide(action_id="act-1", user=outsider, approve=True)
    assert third.final
    assert Action.objects.get(action_id="act-1").decided_by == "ada"


def test_without_separation_of_duties_an_owner_may_approve_alone(agent, make_person):
    owner = make_person("olga", "approver")
    agent.owners.add(owner)
    _pending(agent)
    assert action_decide(action_id="act-1", user=owner, approve=True).final


def test_the_decision_sets_deadlines_by_effective_risk(agent):
    _load_policy(
        "deadlines:\n  high: {escalate_after: 10m, expire_after: 1h}\n"
        "  medium: {expire_after: 2h}\n"
    )
    high = _pending(agent, action_id="act-high", risk="high")
    assert high.escalate_at - high.proposed_at == timedelta(minutes=10)
    assert high.expires_at - high.proposed_at == timedelta(hours=1)
    medium = _pending(agent, action_id="act-medium", risk="medium")
    assert medium.escalate_at is None
    assert medium.expires_at - medium.proposed_at == timedelta(hours=2)
    event = Event.objects.get(action_id="act-high", type="policy_decision")
    assert event.data["expires_at"] == high.expires_at.isoformat().replace("+00:00", "Z")
