"""Proposals racing each other and other writers of the same action_id (PostgreSQL, threads).

A new action_id has no row to lock before the proposal inserts it, so these are the cases
where two transactions meet at an insert instead of at a row lock.
"""

import threading
from typing import Any

import pytest
from django.db import connection, transaction

from apps.actions.models import Action
from apps.actions.propose import ProposalIn, ProposalRejected, action_propose
from apps.audit.canonical import encode_json
from apps.audit.models import Event, EventSource
from apps.audit.services.ingest import event_batch_ingest
from apps.policy.services import policy_version_create
from tests.conftest import event

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL"
    ),
    pytest.mark.django_db(transaction=True),
]

POLICY = "rules:\n  - id: k8s-ops\n    effect: allow\n    match: {action_type: 'k8s.*'}\n"


def _proposal(target: str = "k8s://prod/payments/api") -> ProposalIn:
    return ProposalIn(
        action_id="act-race",
        action_type="k8s.restart_deployment",
        target=target,
        env="prod",
        risk="low",
        confidence=0.9,
        rollback_plan="redeploy",
        parameters={"replicas": 3},
    )


def _run_together(*calls: Any) -> list[Any]:
    """Runs the calls in threads released at the same moment; returns results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Any) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # the test inspects it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.fixture
def auto_agent(agent):
    policy_version_create(source=POLICY)
    agent.autonomy_mode = "auto_low_risk"
    agent.save()
    return agent


def test_two_identical_proposals_at_once_get_one_decision(auto_agent):
    answers = _run_together(
        *(lambda: action_propose(agent=auto_agent, proposal=_proposal()) for _ in range(4))
    )
    assert [type(a).__name__ for a in answers] == ["ProposalAnswer"] * 4
    assert sorted(a.created for a in answers) == [False, False, False, True]
    assert {a.action.status for a in answers} == {"approved"}
    assert Action.objects.filter(action_id="act-race").count() == 1
    assert Event.objects.filter(action_id="act-race", type="proposal").count() == 1


def test_the_same_action_id_with_other_arguments_at_once_gets_409(auto_agent):
    answers = _run_together(
        lambda: action_propose(agent=auto_agent, proposal=_proposal()),
        lambda: action_propose(agent=auto_agent, proposal=_proposal("k8s://prod/payments/other")),
    )
    refused = [a for a in answers if isinstance(a, ProposalRejected)]
    accepted = [a for a in answers if not isinstance(a, ProposalRejected)]
    assert len(refused) == len(accepted) == 1
    assert refused[0].status == 409
    assert "other arguments" in refused[0].message
    stored = Action.objects.get(action_id="act-race")
    assert stored.target == accepted[0].action.target


def _alert_batch_held_open(
    agent_slug: str, agents: dict[str, Any], stored: threading.Event, release: threading.Event
) -> None:
    """Ingests an alert for act-race and keeps its transaction open until `release`."""
    try:
        with transaction.atomic():
            result = event_batch_ingest(
                items=[
                    encode_json(
                        event(
                            agent_slug,
                            "alert",
                            {"name": "api 5xx", "source": "prometheus"},
                            action_id="act-race",
                        )
                    )
                ],
                source=EventSource.API,
                agents_by_slug=agents.get,
            )
            assert result.accepted == 1, result.rejected
            stored.set()
            release.wait(10)
    finally:
        connection.close()


def test_a_proposal_meeting_an_uncommitted_alert_of_its_action_folds_into_that_row(auto_agent):
    stored, release = threading.Event(), threading.Event()
    writer = threading.Thread(
        target=_alert_batch_held_open,
        args=(auto_agent.slug, {auto_agent.slug: auto_agent}, stored, release),
    )
    writer.start()
    assert stored.wait(10)
    answer: dict[str, Any] = {}

    def propose() -> None:
        try:
            answer["value"] = action_propose(agent=auto_agent, proposal=_proposal())
        finally:
            connection.close()

    proposer = threading.Thread(target=propose)
    proposer.start()
    proposer.join(0.5)
    assert proposer.is_alive()  # waiting at the insert for the alert's transaction
    release.set()
    writer.join()
    proposer.join(10)
    assert answer["value"].action.status == "approved"
    row = Action.objects.get(action_id="act-race")
    assert row.first_alert_at is not None  # the alert's fold is kept
    assert row.status == "approved" and row.proposed_at is not None  # and the proposal's
    assert Event.objects.filter(action_id="act-race").count() == 3


def test_a_proposal_meeting_another_agents_uncommitted_action_id_gets_409(auto_agent, other_agent):
    stored, release = threading.Event(), threading.Event()
    writer = threading.Thread(
        target=_alert_batch_held_open,
        args=(other_agent.slug, {other_agent.slug: other_agent}, stored, release),
    )
    writer.start()
    assert stored.wait(10)
    outcome: dict[str, Any] = {}

    def propose() -> None:
        try:
            action_propose(agent=auto_agent, proposal=_proposal())
        except ProposalRejected as exc:
            outcome["refused"] = exc
        finally:
            connection.close()

    proposer = threading.Thread(target=propose)
    proposer.start()
    proposer.join(0.5)
    release.set()
    writer.join()
    proposer.join(10)
    assert outcome["refused"].status == 409
    assert "another agent" in outcome["refused"].message
    assert Action.objects.get(action_id="act-race").agent_id == other_agent.pk
    assert not Event.objects.filter(action_id="act-race", type="proposal").exists()


def test_a_new_proposal_inserts_its_action_once_without_an_update(auto_agent):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        action_propose(agent=auto_agent, proposal=_proposal())
    statements = [q["sql"] for q in queries.captured_queries]
    assert sum('INSERT INTO "actions_action"' in s for s in statements) == 1
    assert not any('UPDATE "actions_action"' in s for s in statements)


def _held_open(work: Any, done: threading.Event, release: threading.Event) -> None:
    """Runs `work` in a transaction kept open until `release`."""
    try:
        with transaction.atomic():
            work()
            done.set()
            release.wait(10)
    finally:
        connection.close()


def test_a_halt_waits_for_the_proposal_being_decided_and_the_next_one_sees_it(auto_agent):
    from apps.fleet.models import Agent
    from apps.fleet.services import agent_halted_set

    # A halt written but not committed: a proposal arriving now waits for it, then sees the
    # halt (423), never the state from before.
    def halt() -> None:
        agent_halted_set(agent=Agent.objects.get(pk=auto_agent.pk), halted=True, reason="cap spent")

    halted, release = threading.Event(), threading.Event()
    halter = threading.Thread(target=_held_open, args=(halt, halted, release))
    halter.start()
    assert halted.wait(10)
    answers: list[Any] = []
    proposer = threading.Thread(
        target=lambda: answers.extend(
            _run_together(lambda: action_propose(agent=auto_agent, proposal=_proposal()))
        )
    )
    proposer.start()
    proposer.join(0.5)
    assert proposer.is_alive(), "the proposal must wait for the uncommitted halt"
    release.set()
    halter.join(10)
    proposer.join(10)
    (answer,) = answers
    assert isinstance(answer, ProposalRejected) and answer.status == 423
    assert "cap spent" in answer.message
    assert not Action.objects.filter(action_id="act-race").exists()

    # Resumed: the same proposal is decided.
    agent_halted_set(agent=Agent.objects.get(pk=auto_agent.pk), halted=False)
    assert action_propose(agent=auto_agent, proposal=_proposal()).action.status == "approved"
