"""Billed cost from Anthropic's Admin API (a local fake spoken to by the real SDK) against the
estimates priced from llm_call events. Figures are worked out by hand:

price test-sonnet*: $3 input, $15 output per Mtok → 1,000,000 in + 100,000 out = $4.50 a call.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.audit.models import Event
from apps.costs.billed.client import AdminApiError, cents_to_units
from apps.costs.billed.services import anthropic_costs_pull
from apps.costs.models import (
    AnthropicBilledCost,
    AnthropicBilledUsage,
    AnthropicCostPull,
    PullTrigger,
)
from apps.fleet.models import Agent
from tests.costs.admin_api import (
    ADMIN_KEY,
    FakeAdminApi,
    Reply,
    api_key_body,
    cost_item,
    cost_page,
    error_body,
    usage_item,
)
from tests.costs.conftest import call, ingest, make_price

pytestmark = pytest.mark.django_db

URL = "/costs/reconciliation/"
D1, D2 = date(2026, 11, 10), date(2026, 11, 11)
TRIAGE_KEY = "apikey_01TriageKey"
STRAY_KEY = "apikey_01StrayKey99"


def pull(since: date = D1, until: date = date(2026, 11, 12)) -> AnthropicCostPull:
    result = anthropic_costs_pull(since=since, until=until, trigger=PullTrigger.COMMAND)
    assert result is not None
    return result


def billed() -> list[tuple[Any, ...]]:
    return list(
        AnthropicBilledCost.objects.order_by("day", "api_key_id", "cost_type").values_list(
            "day", "workspace_id", "model", "api_key_id", "cost_type", "amount", "list_amount"
        )
    )


@pytest.fixture
def fleet(agent: Agent, other_agent: Agent) -> Agent:
    """triage-bot calls Claude with TRIAGE_KEY; k8s-healer has no key mapped."""
    make_price()
    agent.anthropic_api_key_id = TRIAGE_KEY
    agent.save()
    return agent


def calls_on_both_days() -> None:
    ingest(
        call(
            ts=datetime(2026, 11, 10, 9, tzinfo=UTC), input_tokens=1_000_000, output_tokens=100_000
        ),
        call(
            ts=datetime(2026, 11, 11, 9, tzinfo=UTC), input_tokens=1_000_000, output_tokens=100_000
        ),
        call(
            ts=datetime(2026, 11, 11, 10, tzinfo=UTC),
            agent="k8s-healer",
            input_tokens=1_000_000,
            output_tokens=100_000,
        ),
    )


def two_day_bill(api: FakeAdminApi) -> None:
    """Day 1 in two pages (the cursor is followed), day 2 on the second page; the usage
    endpoint's tokens: day 1 10,000 more output tokens than the events ($4.65 at the table),
    an unpriced model on the stray key, day 2 in the batch tier (half price: $4.50)."""
    api.reply(
        cost_page(
            cost_item("2026-11-10", "470.25", list_amount_cents="500"),
            cost_item("2026-11-10", "12.3456789012", api_key_id=STRAY_KEY, model="test-haiku"),
            next_page="page_Mg==",
        ),
        cost_page(
            cost_item("2026-11-11", "580", list_amount_cents="600"),
            cost_item("2026-11-11", "20", cost_type="web_search"),
            has_more=False,
        ),
    )
    api.reply_usage(
        cost_page(
            usage_item("2026-11-10", uncached_input=1_000_000, output=110_000, requests=1),
            usage_item("2026-11-10", uncached_input=1000, api_key_id=STRAY_KEY, model="test-haiku"),
            usage_item(
                "2026-11-11",
                uncached_input=2_000_000,
                output=200_000,
                service_tier="batch",
                requests=None,
            ),
        )
    )


def test_pull_follows_pages_and_stores_exact_amounts(fleet, admin_on):
    two_day_bill(admin_on)
    result = pull()
    assert (result.status, result.rows, result.usage_rows, result.pages, result.message) == (
        "succeeded",
        4,
        3,
        3,
        "",
    )
    assert result.billed_usd == Decimal("10.825956789012")
    assert billed() == [
        (
            D1,
            "wrkspc_01Prod",
            "test-haiku",
            STRAY_KEY,
            "tokens",
            Decimal("0.123456789012"),
            Decimal("0.123456789012"),
        ),
        (D1, "wrkspc_01Prod", "test-sonnet", TRIAGE_KEY, "tokens", Decimal("4.7025"), Decimal("5")),
        (D2, "wrkspc_01Prod", "test-sonnet", TRIAGE_KEY, "tokens", Decimal("5.8"), Decimal("6")),
        (
            D2,
            "wrkspc_01Prod",
            "test-sonnet",
            TRIAGE_KEY,
            "web_search",
            Decimal("0.2"),
            Decimal("0.2"),
        ),
    ]
    first, second = admin_on.cost_requests
    assert first["path"] == second["path"] == "/v1/organizations/analytics/cost"
    # This SDK sends the key as a bearer token.
    assert first["headers"]["authorization"] == f"Bearer {ADMIN_KEY}"
    assert first["headers"]["anthropic-beta"] == "analytics-usage-cost-2026-08-24"
    assert first["query"]["group_by[]"] == ["workspace_id", "model", "api_key_id", "cost_type"]
    assert first["query"]["time_bucket_width"] == ["1d"]
    assert first["query"]["starting_at"] == ["2026-11-10T00:00:00+00:00"]
    assert first["query"]["ending_at"] == ["2026-11-12T00:00:00+00:00"]
    assert "page" not in first["query"]
    assert second["query"]["page"] == ["page_Mg=="]
    (usage_request,) = [r for r in admin_on.requests if r not in (first, second)]
    assert usage_request["path"] == "/v1/organizations/analytics/usage"
    assert usage_request["query"]["group_by[]"] == [
        "workspace_id",
        "model",
        "api_key_id",
        "service_tier",
    ]
    assert list(
        AnthropicBilledUsage.objects.order_by("day", "api_key_id").values_list(
            "day",
            "api_key_id",
            "service_tier",
            "uncached_input_tokens",
            "output_tokens",
            "requests",
        )
    ) == [
        (D1, STRAY_KEY, "standard", 1000, 0, 1),
        (D1, TRIAGE_KEY, "standard", 1_000_000, 110_000, 1),
        (D2, TRIAGE_KEY, "batch", 2_000_000, 200_000, None),
    ]


def test_a_second_pull_replaces_the_days_it_covers_and_keeps_the_others(fleet, admin_on):
    two_day_bill(admin_on)
    pull()
    # Anthropic restates day 2; day 1 is not pulled again.
    admin_on.reply(cost_page(cost_item("2026-11-11", "612.5")))
    again = pull(since=D2, until=date(2026, 11, 12))
    assert again.rows == 1
    assert [(r[0], r[3], r[4], r[5]) for r in billed()] == [
        (D1, STRAY_KEY, "tokens", Decimal("0.123456789012")),
        (D1, TRIAGE_KEY, "tokens", Decimal("4.7025")),
        (D2, TRIAGE_KEY, "tokens", Decimal("6.125")),
    ]
    assert AnthropicBilledUsage.objects.filter(day=D2).count() == 0  # day 2 restated: no usage
    assert AnthropicBilledUsage.objects.filter(day=D1).count() == 2
    # The same answer twice changes nothing (idempotent).
    admin_on.reply(cost_page(cost_item("2026-11-11", "612.5")))
    pull(since=D2, until=date(2026, 11, 12))
    assert AnthropicBilledCost.objects.filter(day=D2).count() == 1


def test_page_reconciles_estimates_with_the_bill(client, finops, fleet, admin_on):
    calls_on_both_days()
    two_day_bill(admin_on)
    pull()
    client.force_login(finops)
    response = client.get(URL, {"since": "2026-11-10", "until": "2026-11-11"})
    assert response.status_code == 200
    recon = response.context["recon"]
    cells = [
        (
            r.day,
            r.workspace_id,
            r.model,
            r.api_key_id,
            r.key_state,
            r.agents,
            r.estimated,
            r.billed,
            r.variance,
            r.variance_pct,
            r.flagged,
        )
        for r in recon.rows
    ]
    assert cells == [
        (
            D1,
            "wrkspc_01Prod",
            "test-haiku",
            STRAY_KEY,
            "unmapped",
            [],
            Decimal(0),
            Decimal("0.123456789012"),
            Decimal("0.123456789012"),
            Decimal("100.0"),
            True,
        ),
        (
            D1,
            "wrkspc_01Prod",
            "test-sonnet",
            TRIAGE_KEY,
            "mapped",
            ["triage-bot"],
            Decimal("4.5"),
            Decimal("4.7025"),
            Decimal("0.2025"),
            Decimal("4.3"),
            False,
        ),
        (
            D2,
            "",
            "test-sonnet",
            "",
            "agent_without_key",
            ["k8s-healer"],
            Decimal("4.5"),
            Decimal(0),
            Decimal("-4.5"),
            None,
            True,
        ),
        (
            D2,
            "wrkspc_01Prod",
            "test-sonnet",
            TRIAGE_KEY,
            "mapped",
            ["triage-bot"],
            Decimal("4.5"),
            Decimal("6.0"),
            Decimal("1.5"),
            Decimal("25.0"),
            True,
        ),
    ]
    assert [(r.api_key_id, r.usage_priced, r.usage_unpriced) for r in recon.rows] == [
        (STRAY_KEY, Decimal(0), True),
        (TRIAGE_KEY, Decimal("4.65"), False),
        ("", None, False),
        (TRIAGE_KEY, Decimal("4.5"), False),
    ]
    page = response.content.decode()
    assert '<div class="value" id="total-usage-priced">$9.1500</div>' in page
    assert "bill's tokens × price table (some unpriced)" in page  # noqa: RUF001
    assert '<div class="value" id="total-estimated">$13.5000</div>' in page
    assert '<div class="value" id="total-billed">$10.8260</div>' in page
    assert '<div class="value" id="total-variance">-$2.6740</div>' in page
    assert "-24.7 %" in page
    assert "no key mapped</span> k8s-healer" in page
    assert f'<td class="mono">{STRAY_KEY}</td>' in page  # in "API keys no agent has"
    assert "$0.2000 not tokens</span>" in page
    assert 'data-plotly="recon-chart-data"' in page
    chart = recon.chart["data"]
    assert chart[0]["x"] == ["2026-11-10", "2026-11-11"]
    assert chart[0]["y"] == [4.825956789012, 6.0]
    assert chart[1]["y"] == [4.5, 9.0]


def test_filters_narrow_rows_and_totals(client, finops, fleet, admin_on):
    calls_on_both_days()
    two_day_bill(admin_on)
    pull()
    client.force_login(finops)
    recon = client.get(
        URL, {"since": "2026-11-10", "until": "2026-11-11", "agent": "triage-bot"}
    ).context["recon"]
    assert [(r.day, r.estimated, r.billed) for r in recon.rows] == [
        (D1, Decimal("4.5"), Decimal("4.7025")),
        (D2, Decimal("4.5"), Decimal("6.0")),
    ]
    assert (recon.totals.estimated, recon.totals.billed, recon.totals.variance_pct) == (
        Decimal("9.0"),
        Decimal("10.7025"),
        Decimal("15.9"),
    )
    tokens = client.get(
        URL,
        {"since": "2026-11-11", "until": "2026-11-11", "model": "test-sonnet", "tokens_only": "1"},
    ).context["recon"]
    assert [(r.api_key_id, r.estimated, r.billed, r.billed_non_token) for r in tokens.rows] == [
        ("", Decimal("4.5"), Decimal(0), Decimal(0)),
        (TRIAGE_KEY, Decimal("4.5"), Decimal("5.8"), Decimal(0)),
    ]


def test_csv_export_has_exact_figures(client, finops, fleet, admin_on):
    calls_on_both_days()
    two_day_bill(admin_on)
    pull()
    client.force_login(finops)
    response = client.get(URL, {"since": "2026-11-10", "until": "2026-11-10", "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    lines = response.content.decode().splitlines()
    assert lines == [
        "day,workspace_id,model,api_key_id,key_state,agents,estimated_usd,usage_priced_usd,billed_usd,billed_non_token_usd,variance_usd,variance_pct,llm_calls,unpriced_calls",
        f"2026-11-10,wrkspc_01Prod,test-haiku,{STRAY_KEY},unmapped,,0,0,0.123456789012,0,0.123456789012,100.0,0,0",
        f"2026-11-10,wrkspc_01Prod,test-sonnet,{TRIAGE_KEY},mapped,triage-bot,4.5,4.65,4.7025,0,0.2025,4.3,1,0",
    ]


def test_finops_maps_an_unmapped_key_to_an_agent(client, finops, fleet, admin_on):
    two_day_bill(admin_on)
    pull()
    client.force_login(finops)
    response = client.post(
        "/costs/reconciliation/api-keys/", {"agent": "k8s-healer", "api_key_id": STRAY_KEY}
    )
    assert response.status_code == 302
    assert Agent.objects.get(slug="k8s-healer").anthropic_api_key_id == STRAY_KEY
    change = Event.objects.get(type="token_change", agent__slug="k8s-healer")
    assert change.data == {"change": "anthropic key set", "token_prefix": STRAY_KEY, "by": "fiona"}
    recon = client.get(URL, {"since": "2026-11-10", "until": "2026-11-10"}).context["recon"]
    assert [(r.api_key_id, r.key_state, r.agents) for r in recon.rows] == [
        (STRAY_KEY, "mapped", ["k8s-healer"]),
        (TRIAGE_KEY, "mapped", ["triage-bot"]),
    ]
    assert recon.unmapped_keys == []


def test_a_pasted_secret_is_refused_as_a_key_id(client, finops, fleet):
    client.force_login(finops)
    response = client.post(
        "/costs/reconciliation/api-keys/",
        {"agent": "k8s-healer", "api_key_id": "sk-ant-api03-secret"},
        follow=True,
    )
    assert "That is a secret key, not a key id" in response.content.decode()
    assert Agent.objects.get(slug="k8s-healer").anthropic_api_key_id == ""


def test_a_refused_admin_key_is_shown_and_the_last_figures_stay(client, finops, fleet, admin_on):
    two_day_bill(admin_on)
    pull()
    admin_on.reply(Reply(status=401, body=error_body("authentication_error", "invalid x-api-key")))
    failed = pull()
    assert (failed.status, failed.http_status) == ("failed", 401)
    assert AnthropicBilledCost.objects.count() == 4  # nothing replaced
    client.force_login(finops)
    page = client.get(URL, {"since": "2026-11-10", "until": "2026-11-11"}).content.decode()
    assert (
        "The Anthropic Admin API refused ANTHROPIC_ADMIN_KEY (HTTP 401) "
        "(authentication_error: invalid x-api-key). An admin should check it is an Admin API "
        "key (sk-ant-admin…) that is still active. The figures below are from the last pull "
        "that succeeded."
    ) in page
    assert '<span class="badge danger">failed</span>' in page


def test_rate_limits_and_server_errors_are_retried_by_the_sdk(settings, fleet, admin_on):
    settings.ANTHROPIC_ADMIN_MAX_RETRIES = 2
    quick = {"retry-after-ms": "5"}
    admin_on.reply(
        Reply(status=429, body=error_body("rate_limit_error", "slow down"), headers=quick),
        Reply(status=529, body=error_body("overloaded_error", "Overloaded"), headers=quick),
        cost_page(cost_item("2026-11-10", "470.25")),
    )
    result = pull()
    assert (result.status, result.rows) == ("succeeded", 1)
    assert len(admin_on.cost_requests) == 3


def test_server_errors_after_the_retries_fail_with_a_message(settings, fleet, admin_on):
    settings.ANTHROPIC_ADMIN_MAX_RETRIES = 1
    quick = {"retry-after-ms": "5"}
    admin_on.reply(
        Reply(status=500, body=error_body("api_error", "Internal"), headers=quick),
        Reply(status=500, body=error_body("api_error", "Internal"), headers=quick),
    )
    result = pull()
    assert (result.status, result.http_status) == ("failed", 500)
    assert result.message == (
        "The Anthropic Admin API had an error (HTTP 500) (api_error: Internal) after 1 "
        "retries; the next pull will try again."
    )


def test_a_hipaa_organization_gets_the_apis_own_reason(fleet, admin_on):
    admin_on.reply(
        Reply(
            status=400,
            body=error_body(
                "invalid_request_error",
                "This endpoint is not available to organizations with HIPAA readiness enabled.",
            ),
        )
    )
    result = pull()
    assert result.message == (
        "The Anthropic Admin API refused the request (HTTP 400) (invalid_request_error: This "
        "endpoint is not available to organizations with HIPAA readiness enabled.)."
    )


def test_without_an_admin_key_the_job_does_nothing_and_the_page_says_how(
    client, finops, settings, fleet
):
    from apps.costs.tasks import anthropic_billed_pull_task

    settings.ANTHROPIC_ADMIN_KEY = ""
    anthropic_billed_pull_task()
    assert AnthropicCostPull.objects.count() == 0
    client.force_login(finops)
    page = client.get(URL).content.decode()
    assert "The Anthropic Admin API is off: opsdash has no ANTHROPIC_ADMIN_KEY." in page
    assert "Pull now" not in page
    with pytest.raises(CommandError, match="no ANTHROPIC_ADMIN_KEY"):
        call_command("pull_anthropic_costs", "--since", "2026-11-10")


def test_pull_now_button_queues_a_pull_that_runs(
    client, finops, fleet, admin_on, eager_celery, django_capture_on_commit_callbacks
):
    two_day_bill(admin_on)
    client.force_login(finops)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/costs/reconciliation/pull/", {"since": "2026-11-10", "until": "2026-11-11"}
        )
    assert response.status_code == 302
    done = AnthropicCostPull.objects.get()
    assert (done.trigger, done.requested_by, done.status, done.rows) == (
        "button",
        finops,
        "succeeded",
        4,
    )
    page = client.get(response["Location"]).content.decode()
    assert "Pulling billed cost for 2026-11-10 to 2026-11-11 (UTC)" in page
    assert "4 cost rows and 3 usage rows from 3 pages · $10.8260 billed" in page


def test_pull_now_refuses_a_backwards_range(client, finops, admin_on):
    client.force_login(finops)
    response = client.post(
        "/costs/reconciliation/pull/", {"since": "2026-11-11", "until": "2026-11-10"}, follow=True
    )
    assert "Nothing was pulled: The last day (2026-11-10) is before the first (2026-11-11)." in (
        response.content.decode()
    )
    assert AnthropicCostPull.objects.count() == 0


def test_a_backwards_filter_range_is_a_400_with_the_reason(client, finops):
    client.force_login(finops)
    response = client.get(URL, {"since": "2026-11-11", "until": "2026-11-10"})
    assert response.status_code == 400
    assert "“To” (2026-11-10) is before “From” (2026-11-11)." in response.content.decode()


def test_command_pulls_the_days_and_prints_the_total(fleet, admin_on):
    two_day_bill(admin_on)
    out = StringIO()
    call_command(
        "pull_anthropic_costs", "--since", "2026-11-10", "--until", "2026-11-11", stdout=out
    )
    assert out.getvalue().strip() == (
        "Pulled 2026-11-10 to 2026-11-11: 4 cost and 3 usage rows from 3 pages, USD 10.83 billed "
        "(replacing what was held for those days)."
    )


@pytest.mark.parametrize(
    "url,method",
    [
        (URL, "get"),
        ("/costs/reconciliation/pull/", "post"),
        ("/costs/reconciliation/api-keys/", "post"),
    ],
)
def test_viewers_are_refused(client, viewer, url, method):
    client.force_login(viewer)
    assert getattr(client, method)(url).status_code == 403


def test_page_queries_do_not_grow_with_rows(
    client, finops, fleet, admin_on, django_assert_max_num_queries
):
    calls_on_both_days()
    two_day_bill(admin_on)
    pull()
    client.force_login(finops)
    with django_assert_max_num_queries(17):
        client.get(URL, {"since": "2026-11-10", "until": "2026-11-11"})


def test_cents_become_currency_units_exactly():
    assert cents_to_units("470.25") == Decimal("4.7025")
    assert cents_to_units("12.3456789012") == Decimal("0.123456789012")
    assert cents_to_units("-3") == Decimal("-0.03")
    with pytest.raises(AdminApiError, match="more than 12 decimal places"):
        cents_to_units("1.0000000000001")
    with pytest.raises(AdminApiError, match="not a number"):
        cents_to_units("NaN")


def test_a_halted_agents_key_can_be_deactivated(fleet, admin_on):
    from apps.fleet.services import anthropic_api_key_set_active

    admin_on.reply(api_key_body(TRIAGE_KEY, "inactive"))
    assert anthropic_api_key_set_active(agent=fleet, active=False, by="fiona") == "inactive"
    change = Event.objects.get(type="token_change", agent=fleet)
    assert change.data == {
        "change": "anthropic key inactive",
        "token_prefix": TRIAGE_KEY,
        "by": "fiona",
    }
    (request,) = admin_on.requests
    assert (request["method"], request["path"], request["body"]) == (
        "POST",
        f"/v1/organizations/api_keys/{TRIAGE_KEY}",
        {"status": "inactive"},
    )


def test_a_row_outside_the_days_asked_for_fails_the_pull(fleet, admin_on):
    two_day_bill(admin_on)
    pull()
    admin_on.reply(cost_page(cost_item("2026-11-09", "100")))
    failed = pull(since=D1, until=D2)
    assert failed.message == (
        "The Admin API sent a row for 2026-11-09, outside the days asked for (2026-11-10 to "
        "2026-11-10); nothing was replaced."
    )
    assert AnthropicBilledCost.objects.count() == 4


def test_a_long_range_is_asked_for_31_days_at_a_time(fleet, admin_on):
    admin_on.reply(
        cost_page(cost_item("2026-10-01", "100")), cost_page(cost_item("2026-11-01", "200"))
    )
    result = pull(since=date(2026, 10, 1), until=date(2026, 11, 5))
    assert (result.status, result.rows, result.billed_usd) == ("succeeded", 2, Decimal("3"))
    assert [
        (r["query"]["starting_at"], r["query"]["ending_at"]) for r in admin_on.cost_requests
    ] == [
        (["2026-10-01T00:00:00+00:00"], ["2026-11-01T00:00:00+00:00"]),
        (["2026-11-01T00:00:00+00:00"], ["2026-11-05T00:00:00+00:00"]),
    ]


def test_a_day_before_the_endpoint_reports_is_refused_before_asking(client, finops, admin_on):
    client.force_login(finops)
    response = client.post(
        "/costs/reconciliation/pull/", {"since": "2025-12-31", "until": "2026-01-02"}, follow=True
    )
    assert (
        "Nothing was pulled: Anthropic reports cost from 2026-01-01 on (from 2026-01-01, and "
        "for the last 365 days); choose a first day from 2026-01-01."
    ) in response.content.decode()
    with pytest.raises(CommandError, match="--since 2025-12-31 is too early"):
        call_command("pull_anthropic_costs", "--since", "2025-12-31")
    assert admin_on.requests == []


def test_the_pull_status_fragment_polls_only_while_a_pull_runs(client, finops, admin_on):
    queued = AnthropicCostPull.objects.create(
        trigger=PullTrigger.BUTTON, since=D1, until=D2, requested_by=finops
    )
    client.force_login(finops)
    fragment = client.get(URL, {"part": "pull"}, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.startswith('<div id="pull-status" hx-get="/costs/reconciliation/?part=pull"')
    assert '<span class="badge muted">queued</span>' in fragment
    queued.status = "running"
    queued.created_at = timezone.now() - timedelta(hours=2)  # its worker died
    queued.save()
    fragment = client.get(URL, {"part": "pull"}, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.startswith('<div id="pull-status">')
    assert '<span class="badge danger">did not finish</span> running since' in fragment
    queued.status = "succeeded"
    queued.save()
    fragment = client.get(URL, {"part": "pull"}, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.startswith('<div id="pull-status">')
    assert '<span class="badge ok">succeeded</span>' in fragment


def test_an_admin_sets_the_key_on_the_agents_page(client, admin_person, agent):
    client.force_login(admin_person)
    page = client.get("/fleet/agents/triage-bot/").content.decode()
    assert 'id="anthropic-key"' in page
    response = client.post(
        "/costs/reconciliation/api-keys/",
        {"agent": "triage-bot", "api_key_id": TRIAGE_KEY, "next": "/fleet/agents/triage-bot/"},
    )
    assert response["Location"] == "/fleet/agents/triage-bot/"
    page = client.get("/fleet/agents/triage-bot/").content.decode()
    assert f'value="{TRIAGE_KEY}"' in page
    assert f"Agent triage-bot now calls Claude with API key {TRIAGE_KEY}." in page


def test_the_daily_job_is_scheduled_and_rereads_the_last_days(settings, fleet, admin_on):
    from django.utils import timezone

    from apps.costs.tasks import anthropic_billed_pull_task
    from opsdash.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["costs-anthropic-billed-pull"]
    assert (entry["task"], entry["schedule"]) == ("costs.anthropic_billed_pull", 86400.0)
    assert "costs.anthropic_billed_pull" in app.tasks
    settings.ANTHROPIC_COST_PULL_DAYS = 3
    anthropic_billed_pull_task()
    today = timezone.now().date()
    done = AnthropicCostPull.objects.get()
    assert (done.trigger, done.status, done.since, done.until) == (
        "schedule",
        "succeeded",
        today - timedelta(days=3),
        today + timedelta(days=1),
    )
    assert admin_on.cost_requests[0]["query"]["starting_at"] == [
        f"{today - timedelta(days=3)}T00:00:00+00:00"
    ]


@pytest.mark.django_db(transaction=True)
def test_two_pulls_replacing_the_same_days_at_once_leave_one_of_them(fleet):
    """Each replace holds the pull lock from its delete to its commit, so the later one sees the
    earlier one's rows and deletes them: never both, never a unique-constraint failure."""
    import threading

    from django.db import connection as main_connection
    from django.db import connections

    from apps.costs.billed.client import BilledRow
    from apps.costs.billed.services import billed_costs_replace

    if main_connection.vendor != "postgresql":
        pytest.skip("the pull lock is PostgreSQL's advisory lock")
    pulls = [
        AnthropicCostPull.objects.create(trigger="command", since=D1, until=D2) for _ in range(2)
    ]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def replace(pull: AnthropicCostPull, cents: str) -> None:
        try:
            barrier.wait()
            row = BilledRow(
                D1,
                "wrkspc_01Prod",
                "test-sonnet",
                TRIAGE_KEY,
                "tokens",
                "USD",
                Decimal(cents),
                Decimal(cents),
            )
            for _ in range(20):
                billed_costs_replace(pull=pull, rows=[row])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=replace, args=(pulls[0], "1")),
        threading.Thread(target=replace, args=(pulls[1], "2")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    (amount,) = AnthropicBilledCost.objects.values_list("amount", flat=True)
    assert amount in (Decimal(1), Decimal(2))
