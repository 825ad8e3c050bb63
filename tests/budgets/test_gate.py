"""POST /api/v1/gate: allow with a reservation, throttle, refuse; reservations settle."""

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from apps.budgets.gate import GateRequest, gate_check, gate_reservations_expire
from apps.budgets.models import BudgetGauge, BudgetThreshold, GateCall
from apps.budgets.selectors import budget_standing
from apps.budgets.services import budget_create
from apps.fleet.services import agent_halted_set, agent_token_mint
from tests.budgets.test_counting import NOW, dollars
from tests.costs.conftest import call, ingest, make_price

pytestmark = pytest.mark.django_db


@pytest.fixture
def gate_client(agent) -> APIClient:
    _, raw = agent_token_mint(
        agent=agent, scopes=["gate:check", "events:write"], ttl=timedelta(days=1)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def cap(agent, make_person):
    make_person("fiona", "finops")
    make_price(effective_from=NOW - timedelta(days=400))  # 3 USD in, 15 USD out per million
    return budget_create(
        slug="triage-daily",
        name="Triage daily LLM",
        scope="agent",
        agent=agent,
        measure="llm_usd",
        period="daily",
        cap=Decimal("10"),
    )


def ask(client: APIClient, **body: Any) -> Any:
    payload = {"kind": "llm_call", "model": "test-sonnet-1", **body}
    return client.post("/api/v1/gate", data=json.dumps(payload), content_type="application/json")


def test_a_call_within_the_cap_is_allowed_and_holds_its_maximum_until_settled(gate_client, cap):
    # 1 M input tokens and 100 k of output at most: 3 + 1.5 = 4.5 USD held.
    first = ask(gate_client, input_tokens=1_000_000, max_tokens=100_000)
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["decision"] == "allow"
    granted = GateCall.objects.get(pk=body["reservation_id"])
    assert {k: Decimal(v) for k, v in granted.holds.items()} == {str(cap.pk): Decimal("4.5")}
    assert BudgetGauge.objects.get(budget=cap).reserved == Decimal("4.5")
    assert body["budgets"] == [
        {"budget": "triage-daily", "measure": "llm_usd", "spent": "0", "reserved": "0", "cap": "10"}
    ]
    # A second one fits (9 of 10); a third would not (13.5 > 10): 423 naming the budget.
    assert ask(gate_client, input_tokens=1_000_000, max_tokens=100_000).status_code == 200
    third = ask(gate_client, input_tokens=1_000_000, max_tokens=100_000)
    assert third.status_code == 423
    assert third.json()["budget"] == "triage-daily"
    assert "0 counted + 9 reserved + 4.5 for this call > 10" in third.json()["reason"]
    assert BudgetGauge.objects.get(budget=cap).reserved == Decimal("9")  # the refusal holds nothing
    page = APIClient()
    page.force_login(User.objects.get(username="fiona"))
    shown = page.get("/budgets/triage-daily/").content.decode()
    assert '<div class="value" id="budget-reserved">9.00</div>' in shown

    # The first call happens (3 USD): its event settles its hold, and its cost is counted.
    happened = call(
        ts=NOW - timedelta(seconds=5), input_tokens=1_000_000, reservation_id=body["reservation_id"]
    )
    ingest(happened)
    assert GateCall.objects.get(pk=body["reservation_id"]).settled_at is not None
    assert budget_standing(cap).spent == Decimal("3")
    gauge = BudgetGauge.objects.get(budget=cap)
    assert (gauge.spent, gauge.reserved) == (Decimal("3"), Decimal("4.5"))
    # The same batch again (a retry) neither counts nor gives back twice.
    assert ingest(happened).accepted == 0
    gauge.refresh_from_db()
    assert (gauge.spent, gauge.reserved) == (Decimal("3"), Decimal("4.5"))
    # 3 counted + 4.5 still held + 1.5 (500 k input) = 9: allowed.
    assert ask(gate_client, input_tokens=500_000).status_code == 200


def test_an_expired_hold_frees_its_room_once(gate_client, cap, settings):
    settings.GATE_RESERVATION_SECONDS = 0
    first = ask(gate_client, input_tokens=3_000_000)  # 9 USD, expires at once
    assert first.status_code == 200
    # Held until the sweep gives it back (every minute).
    assert ask(gate_client, input_tokens=3_000_000).status_code == 423
    assert gate_reservations_expire() == 1
    assert BudgetGauge.objects.get(budget=cap).reserved == Decimal("0")
    assert gate_reservations_expire() == 0
    second = ask(gate_client, input_tokens=3_000_000)
    assert second.status_code == 200
    # The first call's llm_call comes late: its spend counts, its hold is not given back again.
    ingest(call(ts=NOW, input_tokens=1_000_000, reservation_id=first.json()["reservation_id"]))
    gauge = BudgetGauge.objects.get(budget=cap)
    assert (gauge.spent, gauge.reserved) == (Decimal("3"), Decimal("9"))
    assert GateCall.objects.get(pk=first.json()["reservation_id"]).settled_at is None


def test_closed_calls_are_forgotten_after_an_hour(gate_client, cap, settings):
    settings.GATE_RESERVATION_SECONDS = 0
    ask(gate_client, input_tokens=10)
    gate_reservations_expire()
    assert GateCall.objects.count() == 1
    gate_reservations_expire(now=timezone.now() + timedelta(minutes=59))
    assert GateCall.objects.count() == 1
    gate_reservations_expire(now=timezone.now() + timedelta(minutes=61))
    assert GateCall.objects.count() == 0


def test_the_first_call_of_a_new_period_reads_the_period_afresh(agent, cap):
    ingest(dollars(2))  # 6 USD
    today = gate_check(agent=agent, request=GateRequest(kind="llm_call", model="test-sonnet-1"))
    assert today.budgets[0]["spent"] == "6"
    # Tomorrow the daily cap starts again from nothing: the gauge of yesterday is not trusted.
    tomorrow = gate_check(
        agent=agent,
        request=GateRequest(kind="llm_call", model="test-sonnet-1", input_tokens=1_000_000),
        now=timezone.now() + timedelta(days=1),
    )
    assert tomorrow.status == 200
    assert tomorrow.budgets[0]["spent"] == "0"
    assert BudgetGauge.objects.get(budget=cap).spent == Decimal("0")


def test_a_halt_committed_after_the_agent_was_loaded_still_refuses(agent, cap):
    loaded = type(agent).objects.get(pk=agent.pk)
    agent_halted_set(agent=agent, halted=True, reason="emergency stop by fiona")
    answer = gate_check(agent=loaded, request=GateRequest(kind="llm_call", model="test-sonnet-1"))
    assert (answer.status, answer.reason) == (423, "triage-bot is halted: emergency stop by fiona")
    assert GateCall.objects.count() == 0
    assert BudgetGauge.objects.get(budget=cap).reserved == Decimal("0")


def test_a_resume_with_an_allowance_makes_room_at_the_gate(gate_client, agent, cap, make_person):
    from apps.budgets.services import budget_resume

    ingest(dollars(4))  # 12 of 10: halted
    budget_resume(
        budget=cap, reason="quarter close", by=make_person("fin", "finops"), allowance=Decimal("5")
    )
    allowed = ask(gate_client, input_tokens=1_000_000)  # 12 + 3 = 15 of 15
    assert allowed.status_code == 200, allowed.content
    assert allowed.json()["budgets"][0]["cap"] == "15"
    assert ask(gate_client, input_tokens=1_000).status_code == 423


def test_a_halted_agent_is_refused_and_resumed_allowed(gate_client, agent, cap):
    agent_halted_set(agent=agent, halted=True, reason="emergency stop by fiona")
    refused = ask(gate_client, input_tokens=10)
    assert refused.status_code == 423
    assert refused.json() == {
        "decision": "halt",
        "reason": "triage-bot is halted: emergency stop by fiona",
        "budgets": [],
    }
    agent_halted_set(agent=agent, halted=False)
    assert ask(gate_client, input_tokens=10).status_code == 200


def test_after_the_halting_crossing_the_gate_refuses(gate_client, agent, cap):
    ingest(dollars(4))  # 12 of 10: halted in the ingest transaction
    refused = ask(gate_client, kind="tool_call", model="")
    assert refused.status_code == 423
    assert "Budget Triage daily LLM" in refused.json()["reason"]


def test_a_throttle_threshold_limits_calls_per_minute(gate_client, cap):
    BudgetThreshold.objects.filter(budget=cap, action="throttle").update(per_minute=2)
    ingest(dollars(3))  # 9 of 10: 90 % throttle fires
    assert ask(gate_client, kind="tool_call", model="").status_code == 200
    assert ask(gate_client, kind="tool_call", model="").status_code == 200
    third = ask(gate_client, kind="tool_call", model="")
    assert third.status_code == 429
    assert 1 <= int(third["Retry-After"]) <= 60
    assert third.json()["decision"] == "throttle"


def test_an_unpriced_model_under_a_spend_cap_fails_closed(gate_client, cap):
    unknown = ask(gate_client, model="mystery-model", input_tokens=10)
    assert unknown.status_code == 503
    assert "No price for anthropic/mystery-model" in unknown.json()["reason"]
    assert ask(gate_client, model="mystery-model", estimated_cost_usd="0.5").status_code == 200


@pytest.mark.parametrize(
    "body, problem",
    [
        ({"kind": "coffee"}, "kind"),
        ({"kind": "llm_call", "model": "m", "max_tokens": -1}, "max_tokens"),
        ({"kind": "llm_call"}, "names its model"),
        ({"kind": "llm_call", "model": "m", "surprise": 1}, "surprise"),
        ({"kind": "llm_call", "model": "m", "estimated_cost_usd": "-1"}, "estimated_cost_usd"),
    ],
)
def test_a_bad_request_is_a_400_that_says_why(gate_client, cap, body, problem):
    response = gate_client.post(
        "/api/v1/gate", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    assert problem in response.content.decode()


def test_only_agent_tokens_with_the_gate_scope_may_ask(agent, agent_client, client, make_person):
    assert ask(agent_client).status_code == 403  # events:write only
    client.force_login(make_person("fiona", "finops"))
    assert (
        client.post("/api/v1/gate", data="{}", content_type="application/json").status_code == 403
    )


def test_throttled_calls_are_told_when_one_more_fits(agent, cap):
    BudgetThreshold.objects.filter(budget=cap, action="throttle").update(per_minute=2)
    ingest(dollars(3))  # 9 of 10: 90 % throttle fires
    start = timezone.now()
    tool = GateRequest(kind="tool_call")

    def at(seconds: int) -> Any:
        return gate_check(agent=agent, request=tool, now=start + timedelta(seconds=seconds))

    assert at(0).status == 200
    assert at(20).status == 200
    refused = at(30)
    # The call at 0 leaves the minute at 60: one more fits in 30 s.
    assert (refused.status, refused.retry_after) == (429, 30)
    assert refused.reason == "Budget Triage daily LLM is throttled to 2 calls a minute per agent."
    assert at(61).status == 200
    assert (at(62).status, at(62).retry_after) == (429, 18)  # the call at 20 leaves at 80


def test_an_energy_budget_past_its_halt_refuses_llm_calls(agent, cap):
    from apps.budgets.models import BudgetDay

    watts = budget_create(
        slug="triage-energy",
        name="Triage energy",
        scope="agent",
        agent=agent,
        measure="energy_wh",
        period="daily",
        cap=Decimal("100"),
    )
    BudgetDay.objects.create(budget=watts, day=timezone.now().date(), amount=Decimal("101"))
    BudgetGauge.objects.filter(budget=watts).update(period_start=None)  # read afresh
    answer = gate_check(
        agent=agent, request=GateRequest(kind="llm_call", model="test-sonnet-1", input_tokens=10)
    )
    assert (answer.status, answer.budget) == (423, "triage-energy")
    assert "101 counted + 0 reserved + 0 for this call > 100" in answer.reason
