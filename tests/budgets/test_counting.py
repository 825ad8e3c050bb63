"""Budget counters move with the events they count; thresholds act once; halts have teeth."""

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from apps.actions.propose import ProposalIn, ProposalRejected, action_propose
from apps.audit.models import Event
from apps.budgets.models import BudgetCrossing, BudgetDay
from apps.budgets.periods import local_day, period_bounds, period_days
from apps.budgets.selectors import budget_standing
from apps.budgets.services import budget_create, budget_resume
from apps.fleet.models import Agent
from apps.notifications.models import Notification
from tests.costs.conftest import call, ingest, make_price

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC).replace(microsecond=0)


def dollars(n: int, *, ts: datetime | None = None, agent: str = "triage-bot") -> dict[str, Any]:
    """An llm_call costing n x 3 USD at the test price (3 USD per million input tokens)."""
    return call(ts=ts or NOW - timedelta(seconds=30), agent=agent, input_tokens=n * 1_000_000)


@pytest.fixture
def spend_cap(agent, make_person):
    make_person("fiona", "finops")
    make_price(effective_from=NOW - timedelta(days=400))
    return budget_create(
        slug="triage-daily",
        name="Triage daily LLM",
        scope="agent",
        agent=agent,
        measure="llm_usd",
        period="daily",
        cap=Decimal("10"),
    )


def crossings(budget) -> list[tuple[str, str]]:
    return [
        (f"{c.percent.normalize():f}", c.action)
        for c in BudgetCrossing.objects.filter(budget=budget).order_by("percent", "action")
    ]


def test_each_threshold_acts_once_and_the_halt_lands_with_the_event_that_crossed(agent, spend_cap):
    ingest(dollars(1), dollars(1))  # 6 USD: 50 %
    assert crossings(spend_cap) == [("50", "notify")]
    assert Notification.objects.filter(kind="budget_threshold").count() == 1
    ingest(dollars(1))  # 9 USD: 80 % and 90 %
    assert crossings(spend_cap) == [("50", "notify"), ("80", "notify"), ("90", "throttle")]
    agent.refresh_from_db()
    assert not agent.halted
    result = ingest(dollars(1))  # 12 USD: 100 %
    assert result.accepted == 1
    agent.refresh_from_db()
    assert agent.halted
    assert agent.halted_reason == (
        f"Budget Triage daily LLM: 12.00 USD of 10.00 USD (100 %) in the period from "
        f"{local_day(NOW, 'UTC')}"
    )
    events = Event.objects.filter(type="budget_threshold").order_by("ts", "id")
    assert sorted(e.data["percent"] + " " + e.data["action"] for e in events) == [
        "100 halt",
        "50 notify",
        "80 notify",
        "90 throttle",
    ]
    halt = events.get(data__action="halt")
    assert halt.data["agents"] == ["triage-bot"] and halt.data["amount"] == "12"

    # Halted: proposals get 423, events are still stored, and nothing fires twice.
    with pytest.raises(ProposalRejected) as refused:
        action_propose(
            agent=agent,
            proposal=ProposalIn(
                action_id="act-1",
                action_type="k8s.restart_deployment",
                target="k8s://prod/payments/api",
                env="prod",
                risk="low",
                confidence=0.9,
            ),
        )
    assert refused.value.status == 423
    assert ingest(dollars(1)).accepted == 1
    assert len(crossings(spend_cap)) == 4
    assert budget_standing(spend_cap).spent == Decimal("15")


def test_a_resume_without_room_halts_again_at_the_next_event(agent, spend_cap, make_person):
    ingest(dollars(4))  # 12 USD: every threshold
    agent.refresh_from_db()
    assert agent.halted
    person = make_person("fay", "finops")
    budget_resume(budget=spend_cap, reason="incident INC-9 needs it", by=person)
    agent.refresh_from_db()
    assert not agent.halted
    resume = Event.objects.get(type="resume")
    assert resume.data["reason"] == "incident INC-9 needs it" and resume.data["by"] == "fay"
    ingest(dollars(1))
    agent.refresh_from_db()
    assert agent.halted
    assert crossings(spend_cap).count(("100", "halt")) == 2
    # The notify thresholds do not fire again after a resume.
    assert crossings(spend_cap).count(("50", "notify")) == 1


def test_an_allowance_or_a_raised_cap_gives_room(agent, spend_cap, make_person):
    ingest(dollars(4))  # 12 of 10
    person = make_person("fay", "finops")
    budget_resume(budget=spend_cap, reason="one-off", by=person, allowance=Decimal("10"))
    ingest(dollars(2))  # 18 of 20: under the halt
    agent.refresh_from_db()
    assert not agent.halted
    assert budget_standing(spend_cap).cap == Decimal("20")
    ingest(dollars(1))  # 21 of 20
    agent.refresh_from_db()
    assert agent.halted
    budget_resume(budget=spend_cap, reason="raise it", by=person, cap=Decimal("100"))
    ingest(dollars(1))
    agent.refresh_from_db()
    assert not agent.halted


def test_a_cap_lowered_mid_period_acts_at_the_next_event(agent, spend_cap):
    ingest(dollars(2))  # 6 of 10
    spend_cap.cap = Decimal("5")
    spend_cap.save()
    ingest(call(ts=NOW - timedelta(seconds=10), input_tokens=1))  # a tiny call: 6.000003 of 5
    agent.refresh_from_db()
    assert agent.halted


def test_a_late_event_counts_in_its_own_past_period_and_acts_on_nothing(agent, spend_cap):
    ingest(dollars(5, ts=NOW - timedelta(days=3)))
    agent.refresh_from_db()
    assert not agent.halted
    assert BudgetDay.objects.get(budget=spend_cap).amount == Decimal("15")
    assert crossings(spend_cap) == []
    assert budget_standing(spend_cap).spent == Decimal(0)


def test_days_are_the_budgets_local_days(agent, make_person):
    make_price(effective_from=NOW - timedelta(days=400))
    budget = budget_create(
        slug="ny",
        name="New York tokens",
        scope="global",
        measure="tokens",
        period="daily",
        cap=Decimal("1e12"),
        time_zone="America/New_York",
    )
    before_midnight = datetime(2026, 11, 20, 4, 59, tzinfo=UTC)  # 23:59 on the 19th in New York
    after_midnight = datetime(2026, 11, 20, 5, 1, tzinfo=UTC)
    ingest(
        call(ts=before_midnight, input_tokens=100),
        call(ts=after_midnight, input_tokens=7, output_tokens=3),
    )
    days = dict(BudgetDay.objects.filter(budget=budget).values_list("day", "amount"))
    assert days == {date(2026, 11, 19): Decimal(100), date(2026, 11, 20): Decimal(10)}


def test_periods_and_dst():
    # New York leaves DST on 2026-11-01: that local day lasts 25 hours.
    start, end = period_bounds("daily", None, "America/New_York", date(2026, 11, 1))
    assert end - start == timedelta(hours=25)
    assert period_days("weekly", None, date(2026, 11, 26)) == (
        date(2026, 11, 23),
        date(2026, 11, 29),
    )
    assert period_days("monthly", None, date(2024, 2, 10)) == (date(2024, 2, 1), date(2024, 2, 29))
    assert period_days("rolling", 7, date(2026, 11, 26)) == (date(2026, 11, 20), date(2026, 11, 26))


def test_team_model_and_action_budgets_count_what_they_cover(agent, other_agent, make_person):
    make_price(effective_from=NOW - timedelta(days=400))
    opus = budget_create(
        slug="opus",
        name="Opus",
        scope="model",
        model_pattern="test-opus*",
        measure="llm_usd",
        period="monthly",
        cap=Decimal("1000"),
    )
    team = budget_create(
        slug="team",
        name="Team actions",
        scope="team",
        team=agent.team,
        measure="actions",
        period="weekly",
        cap=Decimal("1000"),
    )
    make_price("test-opus*", effective_from=NOW - timedelta(days=400), input="15")
    ingest(
        call("test-opus-1", ts=NOW - timedelta(seconds=5), input_tokens=1_000_000),
        dollars(1),
    )
    from tests.costs.test_action_cost import proposal

    ingest(proposal("act-a", minutes=0) | {"ts": (NOW - timedelta(seconds=5)).isoformat()})
    assert budget_standing(opus).spent == Decimal("15")
    assert budget_standing(team).spent == Decimal("1")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_eight_writers_across_the_cap_make_exactly_one_halt(agent, make_person):
    make_person("fiona", "finops")
    make_price(effective_from=NOW - timedelta(days=400))
    budget = budget_create(
        slug="race",
        name="Race",
        scope="agent",
        agent=agent,
        measure="llm_usd",
        period="daily",
        cap=Decimal("10"),
    )
    barrier = threading.Barrier(8)
    errors: list[Exception] = []

    def writer() -> None:
        try:
            barrier.wait()
            ingest(dollars(1), dollars(1))  # 6 USD each, 48 in all
        except Exception as exc:  # the test reports it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert crossings(budget) == [
        ("50", "notify"),
        ("80", "notify"),
        ("90", "throttle"),
        ("100", "halt"),
    ]
    assert Event.objects.filter(type="budget_threshold", data__action="halt").count() == 1
    assert budget_standing(budget).spent == Decimal("48")
    assert Agent.objects.get(pk=agent.pk).halted


def test_the_budget_pages_show_where_each_budget_stands(client, agent, spend_cap, make_person):
    ingest(dollars(1), dollars(1))
    client.force_login(make_person("fay", "finops"))
    listing = client.get("/budgets/").content.decode()
    assert 'data-budget="triage-daily"' in listing
    assert "60.0 %" in listing
    assert '<td class="budget-state"><span class="badge muted">warned</span></td>' in listing
    ingest(dollars(2))  # 12 of 10: halted
    listing = client.get("/budgets/").content.decode()
    assert '<td class="budget-state"><span class="badge danger">halted</span></td>' in listing
    detail = client.get("/budgets/triage-daily/").content.decode()
    assert '<div class="value" id="budget-spent">12.00</div>' in detail
    assert "50 % notify" in detail
    client.force_login(make_person("ada", "approver"))
    assert client.get("/budgets/").status_code == 403


def test_a_budget_created_mid_period_starts_from_what_was_already_spent(
    agent, other_agent, make_person
):
    make_price(effective_from=NOW - timedelta(days=400))
    ingest(dollars(2), dollars(1, agent="k8s-healer"), dollars(5, ts=NOW - timedelta(days=40)))
    from tests.costs.test_action_cost import proposal

    ingest(proposal("act-z") | {"ts": (NOW - timedelta(seconds=5)).isoformat()})
    agent_budget = budget_create(
        slug="a",
        name="A",
        scope="agent",
        agent=agent,
        measure="llm_usd",
        period="daily",
        cap=Decimal(100),
    )
    team_budget = budget_create(
        slug="t",
        name="T",
        scope="team",
        team=agent.team,
        measure="llm_usd",
        period="daily",
        cap=Decimal(100),
    )
    tokens = budget_create(
        slug="k", name="K", scope="global", measure="tokens", period="daily", cap=Decimal(10**9)
    )
    actions = budget_create(
        slug="n",
        name="N",
        scope="agent",
        agent=agent,
        measure="actions",
        period="daily",
        cap=Decimal(10),
    )
    assert budget_standing(agent_budget).spent == Decimal(6)
    assert budget_standing(team_budget).spent == Decimal(9)
    assert budget_standing(tokens).spent == Decimal(3_000_000)
    assert budget_standing(actions).spent == Decimal(1)
    ingest(dollars(1))
    assert budget_standing(agent_budget).spent == Decimal(9)


def test_a_budget_made_or_edited_past_its_thresholds_acts_at_once(agent, spend_cap, make_person):
    from apps.audit.models import Event
    from tests.budgets.test_api import body
    from tests.budgets.test_halt import person_api

    ingest(dollars(2))  # 6 of 10: 50 % notify fired with the event
    fay = make_person("fay", "finops")
    later = budget_create(
        slug="triage-week",
        name="Triage weekly",
        scope="agent",
        agent=agent,
        measure="llm_usd",
        period="weekly",
        cap=Decimal(7),
    )
    # 6 of 7 (85.7 %) on creation: 50 % and 80 % notify at once, no event needed.
    assert sorted(later.crossings.values_list("percent", flat=True)) == [50, 80]
    agent.refresh_from_db()
    assert not agent.halted
    # FinOps lower the daily cap to 5 through the API (6 of 5): the halt lands with the save.
    replaced = person_api(fay).put(
        "/api/v1/budgets/triage-daily",
        body(name=spend_cap.name, time_zone="UTC", cap="5"),
        format="json",
    )
    assert replaced.status_code == 200, replaced.content
    agent.refresh_from_db()
    assert agent.halted and agent.halted_reason.startswith(
        "Budget Triage daily LLM: 6.00 USD of 5.00 USD"
    )
    assert Event.objects.filter(type="budget_threshold", data__budget="triage-daily").count() == 4
