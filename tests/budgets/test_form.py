"""The budget form: the API's validation, errors at the field, thresholds as rows."""

from decimal import Decimal

import pytest

from apps.budgets.models import Budget

pytestmark = pytest.mark.django_db


def form(**overrides):
    data = {
        "name": "Platform monthly",
        "slug": "platform-monthly",
        "measure": "llm_usd",
        "cap": "500",
        "currency": "USD",
        "scope": "team",
        "team": "platform",
        "agent": "",
        "model_pattern": "",
        "period": "monthly",
        "rolling_days": "",
        "time_zone": "Europe/Paris",
        "active": "on",
        "t0_percent": "80",
        "t0_action": "notify",
        "t1_percent": "95",
        "t1_action": "throttle",
        "t1_per_minute": "3",
        "t2_percent": "100",
        "t2_action": "halt",
    }
    data.update(overrides)
    return data


def test_finops_creates_and_edits_a_budget_in_the_browser_form(client, agent, make_person):
    client.force_login(make_person("fiona", "finops"))
    new = client.get("/budgets/new/").content.decode()
    assert 'name="t3_action"' in new and 'value="100"' in new  # the default thresholds
    saved = client.post("/budgets/new/", form())
    assert saved.status_code == 302 and saved["Location"] == "/budgets/platform-monthly/"
    budget = Budget.objects.get(slug="platform-monthly")
    assert (budget.scope, budget.team.slug, budget.cap, budget.time_zone) == (
        "team",
        "platform",
        Decimal("500"),
        "Europe/Paris",
    )
    assert [(t.percent, t.action, t.per_minute) for t in budget.thresholds.all()] == [
        (Decimal("80"), "notify", None),
        (Decimal("95"), "throttle", 3),
        (Decimal("100"), "halt", None),
    ]
    edited = client.post("/budgets/platform-monthly/edit/", form(cap="750", slug="ignored"))
    assert edited.status_code == 302
    budget.refresh_from_db()
    assert budget.cap == Decimal("750") and budget.slug == "platform-monthly"


def test_errors_show_at_their_field_and_nothing_is_saved(client, agent, make_person):
    client.force_login(make_person("fiona", "finops"))
    bad = client.post("/budgets/new/", form(time_zone="Nowhere/Else", cap="-3"))
    assert bad.status_code == 400
    page = bad.content.decode()
    assert "Nothing was saved" in page
    assert 'id="time_zone-errors"><li>&#x27;Nowhere/Else&#x27; is not an IANA time zone' in page
    assert 'id="cap-errors"><li>The cap is an amount above 0.' in page
    assert 'value="Nowhere/Else"' in page  # what was typed stays
    no_team = client.post("/budgets/new/", form(team="")).content.decode()
    assert 'id="team-errors"><li>A team budget names its team.' in no_team
    assert not Budget.objects.exists()
    client.force_login(make_person("sam", "sre_lead"))
    assert client.get("/budgets/new/").status_code == 403
