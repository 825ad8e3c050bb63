"""/api/v1/budgets: budgets kept in code."""

from decimal import Decimal

import pytest

from apps.budgets.models import Budget
from tests.budgets.test_halt import person_api

pytestmark = pytest.mark.django_db


def body(**overrides):
    return {
        "slug": "triage-daily",
        "name": "Triage daily LLM",
        "scope": "agent",
        "agent": "triage-bot",
        "measure": "llm_usd",
        "period": "daily",
        "time_zone": "Europe/Paris",
        "cap": "25.50",
        **overrides,
    }


def test_finops_creates_reads_and_replaces_a_budget(agent, make_person):
    api = person_api(make_person("fiona", "finops"))
    created = api.post("/api/v1/budgets", body(), format="json")
    assert created.status_code == 201, created.content
    out = created.json()
    assert out["thresholds"] == [
        {"percent": "50", "action": "notify", "per_minute": None},
        {"percent": "80", "action": "notify", "per_minute": None},
        {"percent": "90", "action": "throttle", "per_minute": 10},
        {"percent": "100", "action": "halt", "per_minute": None},
    ]
    assert out["agent"] == "triage-bot" and out["cap"] == "25.500000"
    assert out["standing"]["counted"] == "0"
    replaced = api.put(
        "/api/v1/budgets/triage-daily",
        body(
            cap="40",
            thresholds=[
                {"percent": "75", "action": "demote"},
                {"percent": "100", "action": "halt"},
            ],
        ),
        format="json",
    )
    assert replaced.status_code == 200, replaced.content
    budget = Budget.objects.get(slug="triage-daily")
    assert budget.cap == Decimal("40")
    assert [(t.percent, t.action) for t in budget.thresholds.all()] == [
        (Decimal("75"), "demote"),
        (Decimal("100"), "halt"),
    ]
    assert api.post("/api/v1/budgets", body(), format="json").status_code == 400  # slug taken
    sre = person_api(make_person("sam", "sre_lead"))
    assert sre.get("/api/v1/budgets").status_code == 200
    assert sre.post("/api/v1/budgets", body(slug="other"), format="json").status_code == 403


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"agent": None}, "agent", "An agent budget names its agent."),
        ({"agent": "ghost"}, "agent", "No agent 'ghost'."),
        ({"scope": "team", "agent": None}, "team", "A team budget names its team."),
        ({"period": "rolling"}, "rolling_days", "A rolling budget says how many days"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "is not an IANA time zone"),
        ({"cap": "0"}, "cap", "The cap is an amount above 0."),
        ({"currency": "EUR"}, "currency", "Only cloud spend"),
        (
            {"thresholds": [{"percent": "90", "action": "notify", "per_minute": 5}]},
            "thresholds",
            "Only a throttle",
        ),
    ],
)
def test_a_bad_budget_is_a_400_naming_the_field(agent, make_person, overrides, field, message):
    api = person_api(make_person("fiona", "finops"))
    response = api.post("/api/v1/budgets", body(**overrides), format="json")
    assert response.status_code == 400
    errors = response.json()["detail"]
    assert field in errors
    assert message in str(errors[field])
    assert not Budget.objects.exists()
