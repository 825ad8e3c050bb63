"""SLO create/edit/delete pages: roles, errors at the field, redirects, messages."""

import re
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from apps.fleet.models import Agent
from apps.slo.models import Slo
from apps.slo.services import slo_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead_browser(make_person: Any, agent: Agent, other_agent: Agent) -> Client:
    make_person("sam", "sre_lead")
    browser = Client()
    assert browser.login(username="sam", password="pw-for-tests-1")
    return browser


@pytest.fixture
def viewer_browser(make_person: Any) -> Client:
    make_person("vera", "viewer")
    browser = Client()
    assert browser.login(username="vera", password="pw-for-tests-1")
    return browser


def _form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "slug": "triage-ttp",
        "name": "Triage proposes within 2 minutes",
        "description": "",
        "sli": "time_to_propose",
        "scope": "agent",
        "team": "",
        "agent": "triage-bot",
        "agent_version": "",
        "objective": "0.95",
        "window_kind": "rolling",
        "window_days": "28",
        "time_zone": "UTC",
        "threshold": "120",
        "rollback_window": "24h",
        "good_query": "",
        "total_query": "",
        "alerting": "on",
        "notify_in_app": "on",
        "webhook_url": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _field_errors(response: Any, field: str) -> list[str]:
    html = response.content.decode()
    block = re.search(rf'<ul class="errorlist" id="{field}-errors">(.*?)</ul>', html, re.S)
    return re.findall(r"<li>(.*?)</li>", block.group(1)) if block else []


def _messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_viewer_cannot_open_the_form(viewer_browser) -> None:
    assert viewer_browser.get("/slos/new/").status_code == 403
    assert viewer_browser.post("/slos/new/", _form()).status_code == 403
    assert Slo.objects.count() == 0


def test_anonymous_is_sent_to_login(client) -> None:
    response = client.get("/slos/new/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_new_form_shows_defaults_and_unit_labels(lead_browser) -> None:
    response = lead_browser.get("/slos/new/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<h1 class="page-title">New SLO' in html
    assert 'name="objective" value="0.99"' in html
    assert 'id="threshold-unit">(seconds)</span>' in html
    assert '"cost_per_action": "USD"' in html and '"energy_per_action": "Wh"' in html
    assert '<option value="triage-bot">triage-bot (platform)</option>' in html
    assert 'data-show="rollback"' in html and 'data-show="promql"' in html


def test_create_redirects_to_the_slo_page(lead_browser) -> None:
    response = lead_browser.post("/slos/new/", _form())
    assert response.status_code == 302
    assert response["Location"] == "/slos/triage-ttp/"
    assert _messages(response) == ["Created SLO “Triage proposes within 2 minutes”."]
    slo = Slo.objects.get(slug="triage-ttp")
    assert (slo.agent.slug, str(slo.threshold), slo.created_by, slo.alerting, slo.notify_email) == (
        "triage-bot",
        "120.000000",
        "sam",
        True,
        False,
    )


def test_hidden_fields_that_do_not_apply_are_ignored(lead_browser) -> None:
    # The browser keeps values in hidden rows: a team picked before switching scope to agent,
    # a threshold before switching to acceptance. Only what applies is saved.
    response = lead_browser.post(
        "/slos/new/",
        _form(sli="acceptance", team="platform", good_query="up", rollback_window="2h"),
    )
    assert response.status_code == 302
    slo = Slo.objects.get()
    assert (slo.sli, slo.team, slo.threshold, slo.good_query) == ("acceptance", None, None, "")


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ({"threshold": ""}, "threshold", ["This SLI needs a threshold in seconds."]),
        (
            {"sli": "cost_per_action", "threshold": "0"},
            "threshold",
            ["The threshold must be more than 0 USD."],
        ),
        (
            {"objective": "1.5"},
            "objective",
            ["The objective is a ratio between 0.5 and 0.99999 (e.g. 0.99 for 99 %)."],
        ),
        ({"objective": "abc"}, "objective", ["Give the objective as a number (e.g. 0.99)."]),
        ({"agent": ""}, "agent", ["An agent-scoped SLO needs an agent."]),
        (
            {"window_kind": "calendar_month", "time_zone": "Nowhere/Land"},
            "time_zone",
            ["“Nowhere/Land” is not an IANA time zone (e.g. UTC, Europe/Paris, America/New_York)."],
        ),
        (
            {"sli": "promql", "scope": "all", "total_query": "sum(rate(x_total[5m]))"},
            "good_query",
            ["A PromQL SLO needs a good query."],
        ),
        (
            {"notify_webhook": "on", "webhook_url": "gopher://x"},
            "webhook_url",
            ["Give an http:// or https:// URL with a host."],
        ),
        (
            {"slug": "Bad Slug"},
            "slug",
            [
                "Use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a "
                "letter or digit (it is the OpenSLO metadata.name)."
            ],
        ),
        ({"name": "x" * 201}, "name", ["The name is too long: at most 200 characters."]),
    ],
)
def test_errors_are_shown_at_their_field(lead_browser, overrides, field, expected) -> None:
    response = lead_browser.post("/slos/new/", _form(**overrides))
    assert response.status_code == 400
    assert [
        e.replace("&#x27;", "'").replace("&quot;", '"') for e in _field_errors(response, field)
    ] == expected
    assert "Nothing was saved: correct the 1 field marked below." in response.content.decode()
    assert Slo.objects.count() == 0


def test_duplicate_slug_is_shown_at_the_slug(lead_browser) -> None:
    lead_browser.post("/slos/new/", _form())
    response = lead_browser.post("/slos/new/", _form(name="Another"))
    assert response.status_code == 400
    assert _field_errors(response, "slug") == [
        "An SLO called “triage-ttp” already exists; edit it or choose another slug."
    ]


def test_edit_shows_the_stored_values_and_saves(lead_browser) -> None:
    slo_create(
        by="sam",
        slug="healer-rollbacks",
        name="Healer rollbacks",
        sli="rollback",
        scope="agent",
        agent="k8s-healer",
        objective="0.995",
        rollback_window="90m",
    )
    page = lead_browser.get("/slos/healer-rollbacks/edit/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="objective" value="0.995"' in html
    assert 'name="rollback_window" value="90m"' in html
    assert re.search(r'name="slug" value="healer-rollbacks"[^>]*disabled', html)
    assert 'href="/slos/healer-rollbacks/delete/">Delete…</a>' in html

    form = _form(
        slug="something-else",
        name="Healer rarely rolls back",
        sli="rollback",
        agent="k8s-healer",
        objective="0.995",
        threshold="",
        rollback_window="90m",
    )
    renamed = lead_browser.post("/slos/healer-rollbacks/edit/", form)
    assert renamed["Location"] == "/slos/healer-rollbacks/"
    assert _messages(renamed) == ["Saved “Healer rarely rolls back”."]
    assert Slo.objects.get().revision == 1

    wider = lead_browser.post("/slos/healer-rollbacks/edit/", {**form, "rollback_window": "6h"})
    assert _messages(wider)[-1] == (
        "Saved “Healer rarely rolls back”. What it counts changed: revision 2, its history "
        "was recomputed."
    )
    slo = Slo.objects.get()
    assert (slo.slug, slo.revision, str(slo.rollback_window)) == ("healer-rollbacks", 2, "6:00:00")


def test_delete_asks_then_deletes(lead_browser, viewer_browser) -> None:
    slo_create(by="sam", slug="fleet-recall", name="Recall", sli="recall", objective="0.8")
    confirm = lead_browser.get("/slos/fleet-recall/delete/")
    assert confirm.status_code == 200
    assert "Yes, delete fleet-recall" in confirm.content.decode()
    assert viewer_browser.post("/slos/fleet-recall/delete/").status_code == 403
    done = lead_browser.post("/slos/fleet-recall/delete/")
    assert (done.status_code, done["Location"]) == (302, "/slos/")
    assert _messages(done) == ["Deleted SLO “Recall” with its history and alerts."]
    assert Slo.objects.count() == 0
    assert lead_browser.get("/slos/fleet-recall/edit/").status_code == 404


# ---------------------------------------------------------------------------------------------
# In a real Chromium: the rows shown follow the SLI, the scope and the window.


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_form_shows_the_fields_of_the_chosen_sli(
    make_person: Any, agent: Agent, monkeypatch: Any
) -> None:
    import os
    import shutil

    from tests.browser.test_newcomer_flow import CHROMIUM_ARGS
    from tests.conftest import service_missing
    from tests.system.servers import base_env, db_url, gunicorn

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not path:
        service_missing("Chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    make_person("sam", "sre_lead")
    with gunicorn(base_env(DATABASE_URL=db_url())) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/login/?next=/slos/new/")
        page.fill("#id_username", "sam")
        page.fill("#id_password", "pw-for-tests-1")
        page.click("button[type=submit]")
        page.wait_for_url("**/slos/new/")

        def visible() -> list[str]:
            return page.eval_on_selector_all(
                "[data-show]", "rows => rows.filter(r => !r.hidden).map(r => r.id)"
            )

        assert visible() == ["row-threshold", "row-window_days"]
        page.select_option("#id_sli", "time_to_propose")
        page.select_option("#id_scope", "agent")
        assert visible() == ["row-threshold", "row-agent", "row-agent_version", "row-window_days"]
        assert page.inner_text("#threshold-unit") == "(seconds)"
        page.select_option("#id_sli", "energy_per_action")
        assert page.inner_text("#threshold-unit") == "(Wh)"
        page.select_option("#id_sli", "cost_per_action")
        assert page.inner_text("#threshold-unit") == "(USD)"
        page.fill("#id_slug", "triage-cost")
        page.fill("#id_name", "Triage cost per action")
        page.fill("#id_threshold", "0.05")
        page.select_option("#id_agent", "triage-bot")
        page.select_option("#id_window_kind", "calendar_month")
        assert "row-time_zone" in visible() and "row-window_days" not in visible()
        page.screenshot(
            path=os.environ.get("SLO_FORM_SCREENSHOT", "/tmp/slo-form.png"), full_page=True
        )
        page.select_option("#id_sli", "promql")
        page.select_option("#id_scope", "all")
        assert visible() == ["row-good_query", "row-total_query", "row-time_zone"]
        page.select_option("#id_sli", "rollback")
        page.check("#id_notify_webhook")
        assert visible() == [
            "row-rollback_window",
            "row-time_zone",
            "row-webhook_url",
            "row-auto_demote",
        ]
        # A server-side refusal comes back with the message at its field, row kept visible.
        page.select_option("#id_sli", "time_to_propose")
        page.select_option("#id_scope", "agent")
        page.fill("#id_threshold", "")
        page.click("#slo-form button[type=submit]")
        assert page.inner_text("#threshold-errors") == "This SLI needs a threshold in seconds."
        assert page.locator(".errorlist").count() == 1
        assert page.is_visible("#row-threshold")
        shot = os.environ.get("SLO_FORM_SCREENSHOT", "/tmp/slo-form.png")
        page.screenshot(path=shot.replace(".png", "-errors.png"), full_page=True)
        browser.close()
