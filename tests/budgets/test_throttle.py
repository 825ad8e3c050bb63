"""A fired throttle of an actions or cloud-spend budget limits an agent's proposals a minute."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps.actions.models import Action
from apps.audit.models import Event
from apps.budgets.models import Budget, BudgetCrossing, BudgetThreshold
from apps.budgets.selectors import Throttle, proposal_throttle
from apps.budgets.services import budget_create
from apps.fleet.services import agent_token_mint

pytestmark = pytest.mark.django_db

# 11:00 in Paris (CET, UTC+1).
T0 = datetime(2026, 3, 10, 10, 0, 0, tzinfo=UTC)


def client_for(agent) -> APIClient:
    _, raw = agent_token_mint(agent=agent, scopes=["actions:propose"], ttl=timedelta(days=30))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def propose(client: APIClient, action_id: str, target: str = "k8s://prod/payments/api"):
    return client.post(
        "/api/v1/actions",
        {
            "action_id": action_id,
            "action_type": "k8s.restart_deployment",
            "target": target,
            "env": "prod",
            "risk": "low",
            "confidence": 0.9,
        },
        format="json",
    )


def actions_budget(agent, **fields):
    """100 actions a day for the agent: at 10 the throttle (2 a minute) fires."""
    return budget_create(
        **{
            "slug": "triage-actions",
            "name": "Triage actions",
            "scope": "agent",
            "agent": agent,
            "measure": "actions",
            "period": "daily",
            "time_zone": "Europe/Paris",
            "cap": Decimal(100),
            "thresholds": [
                (Decimal(10), "throttle", 2),
                (Decimal(100), "halt", None),
            ],
            **fields,
        }
    )


def test_past_the_rate_a_proposal_gets_429_with_the_exact_wait(agent, other_agent, time_machine):
    time_machine.move_to(T0 - timedelta(minutes=5), tick=False)
    budget = actions_budget(agent)
    bot, healer = client_for(agent), client_for(other_agent)
    for n in range(1, 10):
        assert propose(bot, f"a{n}").status_code == 201
    assert not BudgetCrossing.objects.filter(budget=budget).exists()

    # The 10th proposal (10 %) fires the throttle; it was under the rate, so it is accepted.
    time_machine.move_to(T0 - timedelta(seconds=44.5), tick=False)
    tenth = propose(bot, "a10")
    assert tenth.status_code == 201, tenth.content
    assert BudgetCrossing.objects.get(budget=budget).action == "throttle"

    # Under the rate (1 proposal in the last minute): the normal answer.
    time_machine.move_to(T0 - timedelta(seconds=20), tick=False)
    eleventh = propose(bot, "a11")
    assert eleventh.status_code == 201
    assert eleventh.json()["action_id"] == "a11"
    assert eleventh.json()["status"] == "pending_approval"

    # Two in the last minute: refused until a10 (T0 - 44.5 s) leaves the window, 15.5 s on.
    time_machine.move_to(T0, tick=False)
    refused = propose(bot, "a12")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "16"
    assert refused.json() == {
        "error": "Budget Triage actions (triage-actions) is throttled: at most 2 actions a "
        "minute per agent, and triage-bot proposed 2 in the last 60 s. Retry in 16 s.",
        "status": 429,
    }
    assert not Action.objects.filter(action_id="a12").exists()
    assert not Event.objects.filter(action_id="a12").exists()

    # A retry of a stored proposal gets its stored answer, throttle or not.
    replay = propose(bot, "a11")
    assert replay.status_code == 200
    assert replay.json() == eleventh.json()
    # The budget covers triage-bot only: k8s-healer proposes at any rate.
    assert [propose(healer, f"h{n}").status_code for n in range(3)] == [201, 201, 201]

    # At T0 + 15.5 s a10 is 60 s old, out of the window: one more fits, then none.
    time_machine.move_to(T0 + timedelta(seconds=15.5), tick=False)
    assert propose(bot, "a12").status_code == 201
    again = propose(bot, "a13")
    assert again.status_code == 429
    assert again["Retry-After"] == "25"  # a11 (T0 - 20 s) leaves at T0 + 40 s


def test_a_throttle_fired_in_the_previous_period_no_longer_limits(agent, time_machine):
    # 23:59:30 in Paris on 10 March: ten proposals fire that day's throttle.
    time_machine.move_to(datetime(2026, 3, 10, 22, 59, 30, tzinfo=UTC), tick=False)
    budget = actions_budget(agent)
    bot = client_for(agent)
    for n in range(1, 11):
        assert propose(bot, f"a{n}").status_code == 201
    assert BudgetCrossing.objects.get(budget=budget).period_start == date(2026, 3, 10)
    time_machine.move_to(datetime(2026, 3, 10, 22, 59, 45, tzinfo=UTC), tick=False)
    refused = propose(bot, "a11")
    assert (refused.status_code, refused["Retry-After"]) == (429, "45")
    # 00:00:05 in Paris (still 10 March in UTC): a new period, no throttle fired in it yet.
    time_machine.move_to(datetime(2026, 3, 10, 23, 0, 5, tzinfo=UTC), tick=False)
    assert propose(bot, "a11").status_code == 201


def test_only_active_budgets_of_actions_or_cloud_spend_throttle_proposals(
    agent, other_agent, team, django_assert_num_queries
):
    for slug, measure, currency in (
        ("team-cloud", "cloud_cost", "EUR"),
        ("team-llm", "llm_usd", "USD"),
    ):
        budget = budget_create(
            slug=slug,
            name=slug,
            scope="team",
            team=team,
            measure=measure,
            currency=currency,
            period="monthly",
            cap=Decimal(1000),
            thresholds=[(Decimal(90), "throttle", 1)],
        )
        BudgetCrossing.objects.create(
            budget=budget,
            threshold=budget.thresholds.get(),
            percent=Decimal(90),
            action="throttle",
            period_start=date(2026, 3, 1),
            amount=Decimal(900),
            limit=Decimal(900),
            crossed_at=T0 - timedelta(days=2),
        )
    Action.objects.create(
        action_id="x1", agent=other_agent, proposed_at=T0 - timedelta(seconds=30), updated_at=T0
    )
    # The team's cloud budget throttles k8s-healer (1 a minute), the LLM budget does not.
    assert proposal_throttle(other_agent, T0) == Throttle(
        budget="team-cloud", budget_name="team-cloud", per_minute=1, retry_after=30
    )
    # triage-bot proposed nothing lately; a throttle fired, so the window is read: 2 queries.
    with django_assert_num_queries(2):
        assert proposal_throttle(agent, T0) is None
    BudgetThreshold.objects.filter(budget__slug="team-cloud").update(per_minute=2)
    assert proposal_throttle(other_agent, T0) is None

    Budget.objects.filter(slug="team-cloud").update(active=False)
    # No fired throttle covers anyone: one query, and the window is never read.
    with django_assert_num_queries(1):
        assert proposal_throttle(other_agent, T0) is None


def test_the_429_is_documented_with_its_retry_after(client):
    schema = client.get("/api/schema/?format=json").json()
    throttled = schema["paths"]["/api/v1/actions"]["post"]["responses"]["429"]
    assert throttled["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert "names the budget and the limit" in throttled["description"]
