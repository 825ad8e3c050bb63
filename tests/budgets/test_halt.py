"""A person's halt and resume: the API, the halted-agents page, the emergency stop."""

from datetime import timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import personal_token_mint
from apps.audit.models import Event
from apps.budgets.services import budget_create, budget_resume
from apps.fleet.models import Agent, Team
from tests.budgets.test_counting import NOW, dollars
from tests.costs.admin_api import api_key_body
from tests.costs.conftest import ingest, make_price

pytestmark = pytest.mark.django_db


def person_api(user) -> APIClient:
    _, raw = personal_token_mint(user=user, name="ci", ttl=timedelta(days=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_finops_halts_and_resumes_an_agent_through_the_api(agent, make_person):
    api = person_api(make_person("fiona", "finops"))
    halted = api.post("/api/v1/agents/triage-bot/halt", {"reason": "runaway loop"}, format="json")
    assert halted.status_code == 200
    assert halted.json() == {
        "agent": "triage-bot",
        "halted": True,
        "halted_reason": "Halted by fiona: runaway loop",
        "changed": True,
    }
    assert Event.objects.get(type="halt").data == {"reason": "runaway loop", "by": "fiona"}
    again = api.post("/api/v1/agents/triage-bot/halt", {"reason": "twice"}, format="json")
    assert again.json()["changed"] is False
    assert (
        api.post("/api/v1/agents/triage-bot/resume", {"reason": ""}, format="json").status_code
        == 400
    )
    resumed = api.post("/api/v1/agents/triage-bot/resume", {"reason": "fixed"}, format="json")
    assert resumed.json()["halted"] is False
    assert api.post("/api/v1/agents/nobody/halt", {"reason": "x"}, format="json").status_code == 404
    viewer = person_api(make_person("vic", "viewer"))
    assert (
        viewer.post("/api/v1/agents/triage-bot/halt", {"reason": "x"}, format="json").status_code
        == 403
    )


def test_an_agent_resume_gives_a_budget_halted_agent_no_room(agent, make_person):
    make_person("fay", "finops")
    make_price(effective_from=NOW - timedelta(days=400))
    budget_create(
        slug="cap",
        name="Cap",
        scope="agent",
        agent=agent,
        measure="llm_usd",
        period="daily",
        cap=Decimal("10"),
    )
    ingest(dollars(4))
    agent.refresh_from_db()
    assert agent.halted
    api = person_api(make_person("fiona", "finops"))
    api.post("/api/v1/agents/triage-bot/resume", {"reason": "try again"}, format="json")
    agent.refresh_from_db()
    assert not agent.halted
    ingest(dollars(1))
    agent.refresh_from_db()
    assert agent.halted and agent.halted_reason.startswith("Budget Cap: 15.00 USD")


def test_the_emergency_stop_halts_a_team_and_the_page_resumes_one(
    client, agent, other_agent, make_person
):
    Agent.objects.create(slug="lone-bot", team=Team.objects.create(slug="data", name="Data"))
    client.force_login(make_person("fiona", "finops"))
    missing = client.post(
        "/budgets/halted/", {"op": "stop", "target": "team:platform", "reason": ""}
    )
    assert missing.status_code == 400
    assert "a reason is required" in missing.content.decode()
    stop = client.post(
        "/budgets/halted/",
        {"op": "stop", "target": "team:platform", "reason": "bad deploy"},
        follow=True,
    )
    assert "Halted 2 agents: k8s-healer, triage-bot." in stop.content.decode()
    assert set(Agent.objects.filter(halted=True).values_list("slug", flat=True)) == {
        "triage-bot",
        "k8s-healer",
    }
    page = client.get("/budgets/halted/").content.decode()
    assert 'data-agent="triage-bot"' in page and "Halted by fiona: bad deploy" in page
    client.post("/budgets/halted/", {"op": "resume", "agent": "k8s-healer", "reason": "checked"})
    assert not Agent.objects.get(slug="k8s-healer").halted
    everything = client.post(
        "/budgets/halted/", {"op": "stop", "target": "all", "reason": "stop all"}, follow=True
    )
    assert "Halted 2 agents: k8s-healer, lone-bot." in everything.content.decode()
    client.force_login(make_person("sam", "sre_lead"))
    assert client.get("/budgets/halted/").status_code == 200
    assert (
        client.post("/budgets/halted/", {"op": "stop", "target": "all", "reason": "x"}).status_code
        == 403
    )


def test_a_halt_sets_the_agents_anthropic_key_inactive_and_a_resume_active(
    agent, admin_on, eager_celery, settings, make_person, django_capture_on_commit_callbacks
):
    settings.HALT_DEACTIVATES_ANTHROPIC_KEY = True
    agent.anthropic_api_key_id = "apikey_01TriageKey"
    agent.save()
    admin_on.reply(
        api_key_body("apikey_01TriageKey", "inactive"), api_key_body("apikey_01TriageKey", "active")
    )
    make_price(effective_from=NOW - timedelta(days=400))
    budget = budget_create(
        slug="cap",
        name="Cap",
        scope="agent",
        agent=agent,
        measure="llm_usd",
        period="daily",
        cap=Decimal("10"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        ingest(dollars(4))  # the halt commits, then the key is switched off
    with django_capture_on_commit_callbacks(execute=True):
        budget_resume(
            budget=budget, reason="raised", by=make_person("fiona", "finops"), cap=Decimal("100")
        )
    assert [(r["path"], r["body"]) for r in admin_on.requests] == [
        ("/v1/organizations/api_keys/apikey_01TriageKey", {"status": "inactive"}),
        ("/v1/organizations/api_keys/apikey_01TriageKey", {"status": "active"}),
    ]
    changes = Event.objects.filter(type="token_change").order_by("ts", "id")
    assert [e.data["change"] for e in changes] == ["anthropic key inactive", "anthropic key active"]
