"""Who created and edited a budget, when, and each field's old → new value."""

from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from apps.audit.models import ChangeRecord
from apps.budgets.models import Budget
from apps.budgets.services import budget_create
from tests.budgets.test_api import body
from tests.budgets.test_form import form
from tests.budgets.test_halt import person_api

pytestmark = pytest.mark.django_db

DEFAULTS = ["50 % notify", "80 % notify", "90 % throttle 10/min", "100 % halt"]


def records(slug: str) -> list[tuple[str, str, dict]]:
    return [
        (r.op, r.by, r.changes)
        for r in ChangeRecord.objects.filter(subject_type="budget", subject=slug).order_by("id")
    ]


def test_the_api_records_each_create_edit_and_deactivation(agent, make_person):
    api = person_api(make_person("fiona", "finops"))
    assert api.post("/api/v1/budgets", body(), format="json").status_code == 201
    budget = Budget.objects.get(slug="triage-daily")
    created = ChangeRecord.objects.get(subject_type="budget", subject_id=budget.pk)
    assert (created.subject, created.op, created.by) == ("triage-daily", "created", "fiona")
    assert created.changes == {
        "name": [None, "Triage daily LLM"],
        "scope": [None, "agent"],
        "agent": [None, "triage-bot"],
        "measure": [None, "llm_usd"],
        "currency": [None, "USD"],
        "period": [None, "daily"],
        "time_zone": [None, "Europe/Paris"],
        "cap": [None, "25.5"],
        "thresholds": [None, DEFAULTS],
        "active": [None, True],
    }

    edit = body(
        cap="40",
        time_zone="UTC",
        thresholds=[
            {"percent": "75", "action": "throttle", "per_minute": 4},
            {"percent": "100", "action": "halt"},
        ],
    )
    assert api.put("/api/v1/budgets/triage-daily", edit, format="json").status_code == 200
    # The same definition again changes nothing, and records nothing.
    assert api.put("/api/v1/budgets/triage-daily", edit, format="json").status_code == 200
    off = {**edit, "active": False, "scope": "global", "agent": None}
    assert api.put("/api/v1/budgets/triage-daily", off, format="json").status_code == 200
    assert records("triage-daily")[1:] == [
        (
            "changed",
            "fiona",
            {
                "time_zone": ["Europe/Paris", "UTC"],
                "cap": ["25.5", "40"],
                "thresholds": [DEFAULTS, ["75 % throttle 4/min", "100 % halt"]],
            },
        ),
        (
            "deactivated",
            "fiona",
            {"scope": ["agent", "global"], "agent": ["triage-bot", None], "active": [True, False]},
        ),
    ]


def test_the_budget_page_shows_who_changed_what(client, agent, make_person):
    client.force_login(make_person("fiona", "finops"))
    assert client.post("/budgets/new/", form()).status_code == 302
    client.force_login(make_person("felix", "finops"))
    edited = client.post(
        "/budgets/platform-monthly/edit/", form(cap="750", t1_per_minute="5", active="")
    )
    assert edited.status_code == 302
    page = client.get("/budgets/platform-monthly/").content.decode()
    changes = page[page.index('id="budget-changes"') :]
    assert (
        "<td>felix</td><td>deactivated</td><td>cap 500 → 750<br>thresholds 80 % notify, "
        "95 % throttle 3/min, 100 % halt → 80 % notify, 95 % throttle 5/min, 100 % halt<br>"
        "active yes → no</td>"
    ) in changes
    assert (
        "<td>fiona</td><td>created</td><td>name Platform monthly<br>scope team<br>team platform"
        "<br>measure llm_usd<br>currency USD<br>period monthly<br>time zone Europe/Paris<br>"
        "cap 500<br>thresholds 80 % notify, 95 % throttle 3/min, 100 % halt<br>active yes</td>"
    ) in changes
    # Newest first.
    assert changes.index("<td>felix</td>") < changes.index("<td>fiona</td>")


def test_a_budget_opsdash_creates_is_recorded_without_a_person(agent, client, make_person):
    budget_create(
        slug="seeded",
        name="Seeded",
        scope="global",
        measure="actions",
        period="weekly",
        cap=Decimal(200),
        thresholds=[(Decimal(100), "halt", None)],
    )
    assert records("seeded") == [
        (
            "created",
            "",
            {
                "name": [None, "Seeded"],
                "scope": [None, "global"],
                "measure": [None, "actions"],
                "currency": [None, "USD"],
                "period": [None, "weekly"],
                "time_zone": [None, "UTC"],
                "cap": [None, "200"],
                "thresholds": [None, ["100 % halt"]],
                "active": [None, True],
            },
        )
    ]
    client.force_login(make_person("sam", "sre_lead"))
    page = client.get("/budgets/seeded/").content.decode()
    assert "<td>opsdash</td><td>created</td><td>name Seeded<br>" in page


def test_change_records_are_append_only(agent):
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    budget_create(
        slug="b", name="B", scope="global", measure="actions", period="daily", cap=Decimal(1)
    )
    record = ChangeRecord.objects.get(subject="b")
    for attempt in (
        lambda: ChangeRecord.objects.filter(pk=record.pk).update(by="mallory"),
        lambda: ChangeRecord.objects.filter(pk=record.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    assert ChangeRecord.objects.get(pk=record.pk).by == ""
