"""/api/v1/slos: roles, every field rule with its message, hostile input (never a 500),
revision bumps and rollup rebuilds, the latest status in the response."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from apps.fleet.models import Agent, Team
from apps.slo.models import SliFact, Slo, SloRollup, SloStatus
from tests.slo.api_helpers import (  # noqa: F401 (fixtures)
    lead_fixture,
    person_api_fixture,
    reader_fixture,
    ttp,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/slos"


@pytest.fixture
def fleet(agent: Agent, other_agent: Agent) -> dict[str, Any]:
    other_team = Team.objects.create(slug="payments", name="Payments")
    pay_bot = Agent.objects.create(slug="pay-bot", team=other_team, autonomy_mode="suggest")
    return {"team": agent.team, "other_team": other_team, "pay_bot": pay_bot}


FACT_MINUTE = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
SENTINEL_MINUTE = datetime(2026, 11, 26, 6, 30, tzinfo=UTC)


def _ttp_facts(fleet: dict[str, Any]) -> None:
    """Time-to-propose facts of 60 s and 100 s for triage-bot, and one of 10 s for pay-bot."""
    triage = Agent.objects.get(slug="triage-bot")
    for subject, agent, seconds in (
        ("act-1", triage, "60"),
        ("act-2", triage, "100"),
        ("act-3", fleet["pay_bot"], "10"),
    ):
        SliFact.objects.create(
            kind="time_to_propose",
            subject=subject,
            agent=agent,
            team=agent.team,
            minute=FACT_MINUTE,
            value=Decimal(seconds),
        )


def _rollups(slo: Slo) -> list[tuple[datetime, int, int]]:
    return list(
        SloRollup.objects.filter(slo=slo).order_by("minute").values_list("minute", "good", "total")
    )


def _errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 400, response.content
    return response.json()["detail"]


# ---------------------------------------------------------------------------------------------
# Access


def test_without_credentials_every_endpoint_answers_401(client: Client) -> None:
    for method, url in [
        ("get", URL),
        ("post", URL),
        ("get", f"{URL}/x"),
        ("put", f"{URL}/x"),
        ("patch", f"{URL}/x"),
        ("delete", f"{URL}/x"),
        ("get", f"{URL}/openslo"),
        ("post", f"{URL}/openslo"),
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == "Bearer"


def test_viewer_reads_but_cannot_write(reader, fleet) -> None:
    assert reader.get(URL).json() == []
    response = reader.post(URL, ttp(), format="json")
    assert response.status_code == 403
    assert response.json()["error"] == "Changing SLOs needs the sre_lead or admin role."
    assert Slo.objects.count() == 0


def test_person_without_role_and_agent_token_are_refused(person_api, agent_client, fleet) -> None:
    nobody = person_api("otto")
    assert nobody.get(URL).status_code == 403
    response = agent_client.get(URL)
    assert response.status_code == 403
    assert response.json()["error"] == (
        "Reading SLOs needs the viewer role (a person's token or session)."
    )


def test_browser_session_of_a_lead_can_create(make_person, fleet) -> None:
    make_person("sam", "sre_lead")
    browser = Client(enforce_csrf_checks=False)
    assert browser.login(username="sam", password="pw-for-tests-1")
    response = browser.post(URL, ttp(), content_type="application/json")
    assert response.status_code == 201
    assert response.json()["created_by"] == "sam"


# ---------------------------------------------------------------------------------------------
# Create, read, update, delete


def test_lead_creates_and_reads_an_slo(lead, reader, fleet, make_person) -> None:
    make_person("alex", "admin")
    response = lead.post(
        URL, ttp(owners=["alex", "sam"], description="  p95 of triage  "), format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in body if k not in ("created_at", "updated_at")} == {
        "slug": "triage-ttp",
        "name": "Triage proposes within 2 minutes",
        "description": "p95 of triage",
        "sli": "time_to_propose",
        "scope": "agent",
        "team": None,
        "agent": "triage-bot",
        "agent_version": "",
        "objective": "0.95",
        "window_kind": "rolling",
        "window_days": 28,
        "time_zone": "UTC",
        "threshold": "120",
        "threshold_unit": "seconds",
        "rollback_window": "1d",
        "good_query": "",
        "total_query": "",
        "alerting": True,
        "notify_in_app": True,
        "notify_email": False,
        "notify_webhook": False,
        "webhook_url": "",
        "auto_demote": False,
        "owners": ["alex", "sam"],
        "revision": 1,
        "created_by": "sam",
        "status": None,
    }
    assert reader.get(f"{URL}/triage-ttp").json() == body
    assert [s["slug"] for s in reader.get(URL).json()] == ["triage-ttp"]


def test_response_carries_the_latest_status(lead, reader, fleet) -> None:
    lead.post(URL, ttp(), format="json")
    slo = Slo.objects.get(slug="triage-ttp")
    at = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    SloStatus.objects.create(
        slo=slo,
        evaluated_at=at,
        window_start=at - timedelta(days=28),
        good=990,
        total=1000,
        sli=Decimal("0.990000"),
        budget_remaining=Decimal("0.800000"),
        burn_rates={"5m": 0.0, "1h": 2.5},
        worst_burn_rate=Decimal("2.5000"),
        state="ok",
    )
    status = reader.get(f"{URL}/triage-ttp").json()["status"]
    assert status == {
        "state": "ok",
        "sli": "0.99",
        "budget_remaining": "0.8",
        "burn_rates": {"5m": 0.0, "1h": 2.5},
        "worst_burn_rate": "2.5",
        "good": 990,
        "total": 1000,
        "window_start": "2026-10-29T06:00:00Z",
        "evaluated_at": "2026-11-26T06:00:00Z",
    }


def test_list_filters_by_team_agent_and_sli(lead, reader, fleet) -> None:
    lead.post(URL, ttp(), format="json")
    lead.post(
        URL,
        {
            "slug": "platform-acceptance",
            "name": "Acceptance",
            "sli": "acceptance",
            "scope": "team",
            "team": "platform",
            "objective": 0.9,
        },
        format="json",
    )
    lead.post(
        URL,
        {
            "slug": "pay-rollback",
            "name": "Pay rollbacks",
            "sli": "rollback",
            "scope": "agent",
            "agent": "pay-bot",
            "objective": 0.99,
            "rollback_window": "12h",
        },
        format="json",
    )
    lead.post(
        URL,
        {"slug": "fleet-recall", "name": "Recall", "sli": "recall", "objective": 0.8},
        format="json",
    )

    def slugs(query: str) -> list[str]:
        response = reader.get(f"{URL}?{query}")
        assert response.status_code == 200
        return [s["slug"] for s in response.json()]

    assert slugs("") == ["fleet-recall", "pay-rollback", "platform-acceptance", "triage-ttp"]
    assert slugs("team=platform") == ["platform-acceptance", "triage-ttp"]
    assert slugs("team=payments") == ["pay-rollback"]
    assert slugs("agent=pay-bot") == ["pay-rollback"]
    assert slugs("sli=recall") == ["fleet-recall"]
    assert slugs("team=platform&sli=acceptance") == ["platform-acceptance"]
    assert slugs("team=nobody") == []
    bad = reader.get(f"{URL}?sli=latency")
    assert bad.status_code == 400
    assert bad.json()["detail"]["sli"] == [
        "Choose one of: time_to_propose, acceptance, rollback, accuracy, recall, "
        "cost_per_action, energy_per_action, promql."
    ]


def test_list_query_count_does_not_grow_with_slos(
    lead, reader, fleet, django_assert_max_num_queries
) -> None:
    for i in range(6):
        lead.post(URL, ttp(slug=f"ttp-{i}", owners=["sam"]), format="json")
    with django_assert_max_num_queries(8):
        assert len(reader.get(URL).json()) == 6


def test_patch_changes_only_the_given_fields_and_bumps_revision_when_counting_changes(
    lead, fleet
) -> None:
    _ttp_facts(fleet)
    lead.post(URL, ttp(), format="json")
    slo = Slo.objects.get(slug="triage-ttp")
    assert _rollups(slo) == [(FACT_MINUTE, 2, 2)]  # 60 s and 100 s both within 120 s
    # A minute no fact backs: a rebuild from the facts would delete it.
    SloRollup.objects.create(slo=slo, minute=SENTINEL_MINUTE, good=7, total=9)

    renamed = lead.patch(
        f"{URL}/triage-ttp", {"name": "Faster triage", "objective": 0.97}, format="json"
    )
    assert renamed.status_code == 200
    assert (
        renamed.json()["name"],
        renamed.json()["objective"],
        renamed.json()["revision"],
    ) == ("Faster triage", "0.97", 1)
    # The name and objective do not change what is counted: the rollups were not rebuilt.
    assert _rollups(slo) == [(FACT_MINUTE, 2, 2), (SENTINEL_MINUTE, 7, 9)]

    tighter = lead.patch(f"{URL}/triage-ttp", {"threshold": "90.5"}, format="json")
    assert (tighter.json()["threshold"], tighter.json()["revision"]) == ("90.5", 2)
    # Rebuilt from the facts: 100 s is now over the bar, and the sentinel is gone.
    assert _rollups(slo) == [(FACT_MINUTE, 1, 2)]

    SloRollup.objects.create(slo=slo, minute=SENTINEL_MINUTE, good=7, total=9)
    same = lead.patch(f"{URL}/triage-ttp", {"threshold": 90.5}, format="json")
    assert same.json()["revision"] == 2
    assert _rollups(slo) == [(FACT_MINUTE, 1, 2), (SENTINEL_MINUTE, 7, 9)]


def test_patch_switching_the_sli_drops_settings_that_no_longer_apply(lead, fleet) -> None:
    lead.post(URL, ttp(), format="json")
    response = lead.patch(f"{URL}/triage-ttp", {"sli": "acceptance"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["sli"], body["threshold"], body["threshold_unit"], body["revision"]) == (
        "acceptance",
        None,
        "",
        2,
    )
    refused = lead.patch(f"{URL}/triage-ttp", {"threshold": 10}, format="json")
    assert _errors(refused) == {
        "threshold": [
            "Only time_to_propose, cost_per_action and energy_per_action SLOs take a threshold."
        ]
    }


def test_put_replaces_the_definition_and_resets_what_is_left_out(lead, fleet) -> None:
    lead.post(URL, ttp(alerting=False, notify_email=True), format="json")
    body = {
        "name": "Team acceptance",
        "sli": "acceptance",
        "scope": "team",
        "team": "platform",
        "objective": "0.9",
    }
    response = lead.put(f"{URL}/triage-ttp", body, format="json")
    assert response.status_code == 200, response.content
    got = response.json()
    assert (
        got["sli"],
        got["scope"],
        got["team"],
        got["agent"],
        got["threshold"],
        got["alerting"],
        got["notify_email"],
        got["revision"],
    ) == ("acceptance", "team", "platform", None, None, True, False, 2)
    missing = lead.put(f"{URL}/triage-ttp", {"name": "x"}, format="json")
    assert _errors(missing) == {
        "sli": ["This field is required."],
        "objective": ["This field is required."],
    }


def test_slug_cannot_change(lead, fleet) -> None:
    lead.post(URL, ttp(), format="json")
    response = lead.patch(f"{URL}/triage-ttp", {"slug": "other"}, format="json")
    assert _errors(response) == {
        "slug": [
            "The slug names the SLO in URLs, alerts and OpenSLO files and cannot change; create "
            "a new SLO (and delete this one) to rename it."
        ]
    }


def test_delete(lead, reader, fleet) -> None:
    lead.post(URL, ttp(), format="json")
    assert reader.delete(f"{URL}/triage-ttp").status_code == 403
    assert lead.delete(f"{URL}/triage-ttp").status_code == 204
    assert Slo.objects.count() == 0
    missing = lead.delete(f"{URL}/triage-ttp")
    assert missing.status_code == 404
    assert missing.json()["error"] == "There is no SLO “triage-ttp”."


def test_duplicate_slug_is_a_409(lead, fleet) -> None:
    assert lead.post(URL, ttp(), format="json").status_code == 201
    response = lead.post(URL, ttp(), format="json")
    assert response.status_code == 409
    assert response.json()["error"] == (
        "An SLO called “triage-ttp” already exists; edit it or choose another slug."
    )


def test_create_builds_the_rollups_from_the_facts_already_there(lead, fleet) -> None:
    _ttp_facts(fleet)
    lead.post(URL, ttp(threshold=90), format="json")
    slo = Slo.objects.get(slug="triage-ttp")
    # triage-bot's two facts (60 s good, 100 s not); pay-bot's 10 s is outside the scope.
    assert _rollups(slo) == [(FACT_MINUTE, 1, 2)]


# ---------------------------------------------------------------------------------------------
# Field rules


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"objective": 0.4},
            {
                "objective": [
                    "The objective is a ratio between 0.5 and 0.99999 (e.g. 0.99 for 99 %)."
                ]
            },
        ),
        (
            {"objective": "1"},
            {
                "objective": [
                    "The objective is a ratio between 0.5 and 0.99999 (e.g. 0.99 for 99 %)."
                ]
            },
        ),
        (
            {"objective": "0.999995"},
            {
                "objective": [
                    "The objective is a ratio between 0.5 and 0.99999 (e.g. 0.99 for 99 %)."
                ]
            },
        ),
        (
            {"objective": "0.9999951"},
            {
                "objective": [
                    "The objective is a ratio between 0.5 and 0.99999 (e.g. 0.99 for 99 %)."
                ]
            },
        ),
        ({"objective": "0.955555"}, {"objective": ["At most 5 decimal places (e.g. 0.99995)."]}),
        ({"objective": "NaN"}, {"objective": ["Send a number (e.g. 0.99)."]}),
        ({"objective": True}, {"objective": ["Send a number (e.g. 0.99)."]}),
        ({"window_days": 14}, {"window_days": ["A rolling window is 7, 28, 30 days long."]}),
        ({"window_days": "28"}, {"window_days": ["A valid integer is required."]}),
        (
            {"window_kind": "calendar_month", "time_zone": "Mars/Olympus"},
            {
                "time_zone": [
                    "“Mars/Olympus” is not an IANA time zone (e.g. UTC, Europe/Paris, America/New_York)."
                ]
            },
        ),
        (
            {"time_zone": "Europe/Paris"},
            {"time_zone": ["Only calendar-month windows take a time zone."]},
        ),
        ({"scope": "agent", "agent": None}, {"agent": ["An agent-scoped SLO needs an agent."]}),
        ({"agent": "ghost-bot"}, {"agent": ["There is no agent “ghost-bot”."]}),
        ({"team": "platform"}, {"team": ["An agent-scoped SLO takes an agent, not a team."]}),
        ({"scope": "team", "agent": None}, {"team": ["A team-scoped SLO needs a team."]}),
        (
            {"scope": "team", "team": "platform"},
            {"agent": ["A team-scoped SLO takes a team, not an agent."]},
        ),
        ({"scope": "all"}, {"agent": ["An SLO over all agents takes no agent; scope: agent."]}),
        (
            {"scope": "all", "agent": None, "agent_version": "v2"},
            {
                "agent_version": [
                    "Narrowing to an agent version needs an agent or team scope "
                    "(versions are named per agent)."
                ]
            },
        ),
        ({"threshold": None}, {"threshold": ["This SLI needs a threshold in seconds."]}),
        ({"threshold": 0}, {"threshold": ["The threshold must be more than 0 seconds."]}),
        (
            {"sli": "cost_per_action", "threshold": -1},
            {"threshold": ["The threshold must be more than 0 USD."]},
        ),
        (
            {"sli": "energy_per_action", "threshold": "1e9"},
            {"threshold": ["The threshold is at most 99999999.999999 Wh."]},
        ),
        ({"threshold": "0.0000001"}, {"threshold": ["At most 6 decimal places."]}),
        (
            {"sli": "accuracy", "threshold": 5},
            {
                "threshold": [
                    "Only time_to_propose, cost_per_action and energy_per_action SLOs take a threshold."
                ]
            },
        ),
        (
            {"sli": "rollback", "threshold": None, "rollback_window": "soon"},
            {
                "rollback_window": [
                    "“soon” is not a duration: write a whole number and a unit, s, m, h, d or w "
                    "(e.g. 30m, 24h, 2d)."
                ]
            },
        ),
        (
            {"sli": "rollback", "threshold": None, "rollback_window": "31d"},
            {"rollback_window": ["The rollback window is between 1m and 30d."]},
        ),
        (
            {"rollback_window": "12h"},
            {"rollback_window": ["Only rollback SLOs take a rollback window."]},
        ),
        (
            {"sli": "promql", "threshold": None, "scope": "all", "agent": None},
            {
                "good_query": ["A PromQL SLO needs a good query."],
                "total_query": ["A PromQL SLO needs a total query."],
            },
        ),
        ({"good_query": "up"}, {"good_query": ["Only PromQL SLOs take queries."]}),
        (
            {"webhook_url": "ftp://hooks.example.com/x"},
            {"webhook_url": ["Give an http:// or https:// URL with a host."]},
        ),
        (
            {"webhook_url": "javascript:alert(1)"},
            {"webhook_url": ["Give an http:// or https:// URL with a host."]},
        ),
        (
            {"auto_demote": True},
            {"auto_demote": ["Only safety SLOs (rollback, accuracy) may demote an agent."]},
        ),
        ({"owners": ["sam", "ghost"]}, {"owners": ["No active person with the username ghost."]}),
        ({"owners": "sam"}, {"owners": ['Expected a list of items but got type "str".']}),
        (
            {"slug": "Triage_TTP"},
            {
                "slug": [
                    "Use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a letter "
                    "or digit (it is the OpenSLO metadata.name)."
                ]
            },
        ),
        (
            {"slug": "openslo"},
            {"slug": ["“openslo” is reserved by opsdash's pages; choose another slug."]},
        ),
        ({"slug": None}, {"slug": ["This field may not be null."]}),
        ({"name": "   "}, {"name": ["This field may not be blank."]}),
        ({"name": 42}, {"name": ["Send text, not a number."]}),
        ({"sli": "latency"}, {"sli": ['"latency" is not a valid choice.']}),
        ({"sli": ["acceptance"]}, {"sli": ["\"['acceptance']\" is not a valid choice."]}),
        ({"alerting": "yes"}, {"alerting": ["Send true or false."]}),
        (
            {"color": "blue"},
            {
                "color": [
                    "Unknown field; an SLO has: agent, agent_version, alerting, auto_demote, description, "
                    "good_query, name, notify_email, notify_in_app, notify_webhook, objective, owners, "
                    "rollback_window, scope, sli, slug, team, threshold, time_zone, total_query, "
                    "webhook_url, window_days, window_kind."
                ]
            },
        ),
    ],
)
def test_bad_fields_answer_400_naming_the_field(lead, fleet, overrides, expected) -> None:
    response = lead.post(URL, ttp(**overrides), format="json")
    assert _errors(response) == expected
    assert Slo.objects.count() == 0


def test_accepts_the_edges_and_every_sli(lead, fleet) -> None:
    cases = [
        ttp(slug="a1", objective=0.5, window_days=7),
        ttp(slug="a2", objective="0.99999", window_days=30, agent_version="v2.1"),
        {
            "slug": "a3",
            "name": "Cost",
            "sli": "cost_per_action",
            "scope": "team",
            "team": "payments",
            "objective": 0.9,
            "threshold": "0.05",
            "agent_version": "v3",
        },
        {
            "slug": "a4",
            "name": "Energy",
            "sli": "energy_per_action",
            "objective": 0.9,
            "threshold": 12.5,
            "window_kind": "calendar_month",
            "time_zone": "Europe/Paris",
        },
        {
            "slug": "a5",
            "name": "Rollbacks",
            "sli": "rollback",
            "scope": "agent",
            "agent": "k8s-healer",
            "objective": 0.995,
            "rollback_window": "90m",
            "auto_demote": True,
        },
        {
            "slug": "a6",
            "name": "Prom",
            "sli": "promql",
            "objective": 0.999,
            "good_query": 'sum(rate(http_requests_total{code!~"5.."}[5m]))',
            "total_query": "sum(rate(http_requests_total[5m]))",
            "notify_webhook": True,
            "webhook_url": "https://hooks.example.com/slo",
        },
    ]
    for body in cases:
        response = lead.post(URL, body, format="json")
        assert response.status_code == 201, (body, response.content)
    got = {s.slug: s for s in Slo.objects.all()}
    assert got["a1"].objective == Decimal("0.5")
    assert got["a2"].agent_version == "v2.1"
    assert (got["a3"].threshold, got["a3"].team.slug) == (Decimal("0.05"), "payments")
    assert (got["a4"].window_kind, got["a4"].time_zone) == ("calendar_month", "Europe/Paris")
    assert (got["a5"].rollback_window, got["a5"].auto_demote) == (timedelta(minutes=90), True)
    assert got["a6"].good_query == 'sum(rate(http_requests_total{code!~"5.."}[5m]))'


# ---------------------------------------------------------------------------------------------
# Hostile input: never a 500


def test_hostile_bodies_answer_4xx(lead, fleet) -> None:
    huge = "x" * 300_000
    cases: list[tuple[Any, int]] = [
        (ttp(name=huge), 400),
        (ttp(description=huge), 400),
        (ttp(good_query=huge), 400),
        (ttp(slug=huge), 400),
        (ttp(agent=huge), 400),
        (ttp(owners=["x"] * 1000), 400),
        (ttp(objective="9" * 1000), 400),
        (ttp(threshold={"$gt": 1}), 400),
        (ttp(name="nul\x00byte"), 400),
        (["not", "an", "object"], 400),
        ("a string", 400),
        (None, 400),
        ({}, 400),
    ]
    for body, code in cases:
        response = lead.post(URL, body, format="json")
        assert response.status_code == code, (str(body)[:80], response.content[:300])
    garbage = lead.post(URL, b"{not json", content_type="application/json")
    assert garbage.status_code == 400
    assert Slo.objects.count() == 0


def test_unknown_slug_in_the_path_answers_404(reader, lead, fleet) -> None:
    for client, method in ((reader, "get"), (lead, "put"), (lead, "patch"), (lead, "delete")):
        response = getattr(client, method)(f"{URL}/{'z' * 5000}", {}, format="json")
        assert response.status_code == 404


def test_nul_characters_anywhere_answer_4xx(lead, reader, fleet) -> None:
    # PostgreSQL refuses NUL in text parameters: none may reach a query.
    assert reader.get(f"{URL}/triage%00ttp").status_code == 404
    assert reader.get(f"{URL}?team=plat%00form").json() == []
    assert reader.get(f"{URL}?agent=%00").json() == []
    for overrides in (
        {"scope": "team", "agent": None, "team": "plat\x00form"},
        {"agent": "\x00"},
        {"owners": ["sam\x00"]},
        {"slug": "a\x00b"},
        {"good_query": "up\x00"},
    ):
        response = lead.post(URL, ttp(**overrides), format="json")
        assert response.status_code == 400, overrides
    assert Slo.objects.count() == 0


PROMQL_BODY = {
    "slug": "api-availability",
    "name": "API availability",
    "sli": "promql",
    "objective": 0.999,
    "good_query": "sum(increase(http_requests_total{code!~'5..'}[1m]))",
    "total_query": "sum(increase(http_requests_total[1m]))",
}


def test_promql_queries_are_checked_by_prometheus_when_new_or_changed(
    lead, fleet, prometheus
) -> None:
    bad = lead.post(URL, {**PROMQL_BODY, "total_query": "sum by(code"}, format="json")
    # Prometheus's own parse error (the apt package's Prometheus; stable across 2.x).
    assert _errors(bad) == {
        "total_query": [
            "Prometheus refused the query: 1:12: parse error: unclosed left parenthesis"
        ]
    }
    assert Slo.objects.count() == 0

    assert lead.post(URL, PROMQL_BODY, format="json").status_code == 201
    renamed = lead.patch(f"{URL}/api-availability", {"name": "API up"}, format="json")
    assert (renamed.status_code, renamed.json()["revision"]) == (200, 1)
    changed = lead.patch(
        f"{URL}/api-availability",
        {"good_query": "sum(increase(http_requests_total{code='200'}[1m]))"},
        format="json",
    )
    assert (changed.status_code, changed.json()["revision"]) == (200, 2)
    refused = lead.patch(f"{URL}/api-availability", {"good_query": "sum by(code"}, format="json")
    assert _errors(refused) == {
        "good_query": ["Prometheus refused the query: 1:12: parse error: unclosed left parenthesis"]
    }
    assert Slo.objects.get().good_query == "sum(increase(http_requests_total{code='200'}[1m]))"


def test_changing_a_promql_query_drops_its_rollups_for_a_backfill(lead, fleet, prometheus) -> None:
    assert lead.post(URL, PROMQL_BODY, format="json").status_code == 201
    slo = Slo.objects.get()
    SloRollup.objects.create(slo=slo, minute=FACT_MINUTE, good=99, total=100)
    lead.patch(f"{URL}/api-availability", {"objective": 0.99}, format="json")
    assert _rollups(slo) == [(FACT_MINUTE, 99, 100)]  # the objective is not counted
    lead.patch(f"{URL}/api-availability", {"total_query": "sum(x)"}, format="json")
    assert _rollups(slo) == []
    assert Slo.objects.get().revision == 2
