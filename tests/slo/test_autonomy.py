"""Automatic demotion on a safety page and promotion suggestions."""

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from apps.actions.models import Action
from apps.audit.models import Event
from apps.fleet.models import Agent
from apps.notifications.models import Notification
from apps.slo.autonomy import (
    agent_promotion_suggestion,
    promotion_candidates,
    promotion_suggestions_notify,
)
from apps.slo.evaluate import slo_evaluate
from apps.slo.models import Slo, SloAlert
from tests.slo.test_evaluate import NOW, make_slo, rollup, utc


@pytest.fixture
def sam(make_person: Any) -> Any:
    return make_person("sam", "sre_lead")


@pytest.fixture
def safety_slo(other_agent: Agent, sam: Any) -> Slo:
    # other_agent (k8s-healer) runs in auto_low_risk.
    return make_slo(scope="agent", agent=other_agent, auto_demote=True)


def autonomy_events() -> list[dict[str, Any]]:
    return list(
        Event.objects.filter(type="autonomy_change").order_by("ts").values_list("data", flat=True)
    )


def mode(agent: Agent) -> str:
    agent.refresh_from_db()
    return agent.autonomy_mode


def test_page_on_a_safety_slo_demotes_one_step_once(safety_slo: Slo, other_agent: Agent) -> None:
    rollup(safety_slo, utc(2026, 11, 26, 11, 58), 0, 10)  # burn 100: both page rules open
    slo_evaluate(safety_slo, now=NOW)
    assert mode(other_agent) == "suggest"
    first_page = SloAlert.objects.get(long_window="1h")
    assert autonomy_events() == [
        {
            "from": "auto_low_risk",
            "to": "suggest",
            "reason": "Triage accuracy (accuracy) paged: burn rate 100x over 1h and 5m above 14.4x",
            "slo": "triage-accuracy",
            "alert": first_page.pk,
            "by": "opsdash",
        }
    ]
    demoted = Notification.objects.get(kind="autonomy_demoted")
    assert (demoted.recipient.username, demoted.title) == (
        "sam",
        "k8s-healer demoted from auto_low_risk to suggest",
    )
    assert demoted.url == "/fleet/agents/k8s-healer/"

    # Still paging a minute later: no second step.
    slo_evaluate(safety_slo, now=NOW + timedelta(minutes=1))
    assert mode(other_agent) == "suggest"
    assert len(autonomy_events()) == 1

    # Page 1h/5m resolves while 6h/30m still pages, then 1h/5m opens again: the same episode.
    rollup(safety_slo, utc(2026, 11, 26, 12, 8), 100, 100)
    slo_evaluate(safety_slo, now=NOW + timedelta(minutes=8))
    rollup(safety_slo, utc(2026, 11, 26, 12, 9), 0, 100)
    slo_evaluate(safety_slo, now=NOW + timedelta(minutes=9))
    assert SloAlert.objects.filter(long_window="1h").count() == 2
    assert mode(other_agent) == "suggest"
    assert len(autonomy_events()) == 1

    # Seven quiet hours close every page; the next burst is a new episode: one more step.
    quiet = NOW + timedelta(hours=7)
    slo_evaluate(safety_slo, now=quiet)
    assert not SloAlert.objects.filter(severity="page", resolved_at__isnull=True).exists()
    rollup(safety_slo, utc(2026, 11, 26, 19, 0), 0, 10)
    slo_evaluate(safety_slo, now=quiet)
    assert mode(other_agent) == "observe"
    assert [(e["from"], e["to"]) for e in autonomy_events()] == [
        ("auto_low_risk", "suggest"),
        ("suggest", "observe"),
    ]

    # Observe is the floor: a third episode changes nothing and records nothing.
    later = NOW + timedelta(hours=14)
    slo_evaluate(safety_slo, now=later)
    rollup(safety_slo, utc(2026, 11, 27, 2, 0), 0, 10)
    slo_evaluate(safety_slo, now=later)
    assert mode(other_agent) == "observe"
    assert len(autonomy_events()) == 2
    assert Notification.objects.filter(kind="autonomy_demoted").count() == 2


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs real row locks and concurrent connections"
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_evaluations_demote_once(sam: Any, team: Any) -> None:
    healer = Agent.objects.create(slug="k8s-healer", team=team, autonomy_mode="auto_low_risk")
    slo = make_slo(scope="agent", agent=healer, auto_demote=True, sli="rollback")
    rollup(slo, utc(2026, 11, 26, 11, 58), 0, 10)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            own = Slo.objects.get(pk=slo.pk)
            barrier.wait(timeout=10)
            slo_evaluate(own, now=NOW)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert mode(healer) == "suggest"
    assert [(e["from"], e["to"]) for e in autonomy_events()] == [("auto_low_risk", "suggest")]
    assert Notification.objects.filter(kind="autonomy_demoted").count() == 1


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"auto_demote": False}, "auto_demote off"),
        ({"sli": "acceptance"}, "not a safety SLI"),
    ],
)
def test_no_demotion_without_opt_in_or_for_other_slis(
    safety_slo: Slo, other_agent: Agent, fields: dict[str, Any], why: str
) -> None:
    for name, value in fields.items():
        setattr(safety_slo, name, value)
    safety_slo.save()
    rollup(safety_slo, utc(2026, 11, 26, 11, 58), 0, 10)
    assert slo_evaluate(safety_slo, now=NOW).state == "critical", why
    assert mode(other_agent) == "auto_low_risk"
    assert autonomy_events() == []


def test_no_demotion_for_a_team_slo(team: Any, other_agent: Agent) -> None:
    slo = make_slo(scope="team", team=team, auto_demote=True, sli="rollback")
    rollup(slo, utc(2026, 11, 26, 11, 58), 0, 10)
    slo_evaluate(slo, now=NOW)
    assert mode(other_agent) == "auto_low_risk"
    assert autonomy_events() == []


def test_a_ticket_does_not_demote(safety_slo: Slo, other_agent: Agent) -> None:
    rollup(safety_slo, utc(2026, 11, 25, 16, 0), 950, 1000)
    rollup(safety_slo, utc(2026, 11, 26, 10, 30), 96, 100)
    assert slo_evaluate(safety_slo, now=NOW).state == "warning"
    assert mode(other_agent) == "auto_low_risk"


# Promotion ---------------------------------------------------------------------------------


@pytest.fixture
def proven(agent: Agent, sam: Any) -> Agent:
    """triage-bot (suggest): accuracy 95/100 (objective 0.9), recall 9/10 (0.8), 50 actions."""
    accuracy = make_slo("triage-accuracy", scope="agent", agent=agent, objective=Decimal("0.9"))
    recall = make_slo(
        "triage-recall",
        name="Triage recall",
        sli="recall",
        scope="agent",
        agent=agent,
        objective=Decimal("0.8"),
    )
    rollup(accuracy, NOW - timedelta(days=30), 95, 100)
    rollup(accuracy, NOW - timedelta(days=91), 0, 100)  # before the 90 days: ignored
    rollup(recall, NOW - timedelta(days=2), 9, 10)
    actions(agent, 50)
    return agent


def actions(agent: Agent, n: int, *, start: int = 0, age: timedelta = timedelta(days=1)) -> None:
    Action.objects.bulk_create(
        Action(action_id=f"{agent.slug}-{start + i}", agent=agent, proposed_at=NOW - age)
        for i in range(n)
    )


def test_agent_meeting_every_slo_is_a_candidate(proven: Agent, other_agent: Agent) -> None:
    actions(other_agent, 80)  # no SLOs: never a candidate
    actions(proven, 5, start=100, age=timedelta(days=95))  # too old to count
    [candidate] = promotion_candidates(NOW)
    assert candidate.agent == proven
    assert (candidate.current_mode, candidate.suggested_mode) == ("suggest", "auto_low_risk")
    assert candidate.actions == 50
    assert candidate.since == NOW - timedelta(days=90)
    assert [(s.slug, s.good, s.total, s.ratio, s.met) for s in candidate.slos] == [
        ("triage-accuracy", 95, 100, Decimal("0.95"), True),
        ("triage-recall", 9, 10, Decimal("0.9"), True),
    ]
    assert (candidate.to_mode, candidate.reason) == (
        "auto_low_risk",
        "90 days, 50 actions, every SLO met",
    )
    assert agent_promotion_suggestion(proven, now=NOW) == candidate


def test_too_few_actions_is_not_enough(proven: Agent) -> None:
    Action.objects.filter(action_id="triage-bot-0").delete()
    assert promotion_candidates(NOW) == []
    assert len(promotion_candidates(NOW, min_actions=49)) == 1


def test_recall_must_be_measured_and_met(proven: Agent) -> None:
    recall = Slo.objects.get(slug="triage-recall")
    recall.rollups.update(good=7)  # 7/10 < 0.8
    assert promotion_candidates(NOW) == []
    recall.delete()  # no recall SLO at all
    assert promotion_candidates(NOW) == []


def test_an_slo_without_data_blocks_promotion(proven: Agent) -> None:
    make_slo("triage-cost", sli="cost_per_action", scope="agent", agent=proven)
    assert promotion_candidates(NOW) == []


def test_the_period_is_configurable(proven: Agent, settings: Any) -> None:
    # Over 1 day neither SLO has events.
    assert promotion_candidates(NOW, days=1) == []
    settings.SLO_PROMOTION_DAYS = 1
    assert promotion_candidates(NOW) == []


def test_top_mode_and_halted_agents_are_not_candidates(proven: Agent) -> None:
    Agent.objects.filter(pk=proven.pk).update(autonomy_mode="auto_low_risk")
    assert promotion_candidates(NOW) == []
    Agent.objects.filter(pk=proven.pk).update(autonomy_mode="observe", halted=True)
    assert promotion_candidates(NOW) == []
    Agent.objects.filter(pk=proven.pk).update(halted=False)
    assert [c.suggested_mode for c in promotion_candidates(NOW)] == ["suggest"]


def test_sre_leads_are_told_once_per_agent_per_period(proven: Agent, make_person: Any) -> None:
    make_person("vera", "viewer")
    assert promotion_suggestions_notify(now=NOW) == 1
    assert promotion_suggestions_notify(now=NOW + timedelta(days=1)) == 1
    notice = Notification.objects.get()
    assert notice.recipient.username == "sam"
    assert notice.kind == "autonomy_promotion_suggested"
    assert notice.title == "triage-bot met its SLOs for 90 days: consider auto_low_risk"
    assert notice.body == (
        "50 actions since 2026-08-28; every SLO met (accuracy, recall). It runs in suggest now."
    )
    assert notice.url == "/fleet/agents/triage-bot/"
