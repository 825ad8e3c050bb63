"""FinOps reads the reconciliation in a real Chromium: the chart is drawn, a flagged row shows."""

from datetime import UTC, date, datetime

import pytest
from django.db import connection

from apps.costs.billed.services import anthropic_costs_pull
from apps.costs.models import PullTrigger
from tests.browser.test_newcomer_flow import browser  # noqa: F401 (fixture)
from tests.costs.admin_api import admin_api, admin_on, cost_item, cost_page  # noqa: F401
from tests.costs.conftest import call, ingest, make_price
from tests.system.servers import base_env, db_url, gunicorn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_finops_sees_estimated_vs_billed_drawn_and_the_large_variance_flagged(
    browser,  # noqa: F811
    make_person,
    agent,
    admin_on,  # noqa: F811
):
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith("file:"):
        pytest.skip("in-memory SQLite cannot be shared with a server process")
    make_person("fay", "finops")
    make_price()
    agent.anthropic_api_key_id = "apikey_01TriageKey"
    agent.save()
    ingest(
        call(
            ts=datetime(2026, 11, 10, 9, tzinfo=UTC), input_tokens=1_000_000, output_tokens=100_000
        )
    )
    admin_on.reply(cost_page(cost_item("2026-11-10", "600")))  # $6.00 billed vs $4.50
    pull = anthropic_costs_pull(
        since=date(2026, 11, 10), until=date(2026, 11, 11), trigger=PullTrigger.COMMAND
    )
    assert pull is not None and pull.status == "succeeded"

    with gunicorn(base_env(DATABASE_URL=db_url())) as url:
        page = browser.new_page()
        page.goto(f"{url}/costs/reconciliation/?since=2026-11-10&until=2026-11-10")
        page.fill("#id_username", "fay")
        page.fill("#id_password", "pw-for-tests-1")
        page.click("button[type=submit]")
        page.wait_for_url("**/costs/reconciliation/**")
        page.wait_for_selector("[data-plotly='recon-chart-data'] .main-svg")
        assert page.locator("#recon-table tbody tr.flagged").count() == 1
        row = page.locator("#recon-table tbody tr.flagged").inner_text()
        assert "apikey_01TriageKey → triage-bot" in row
        assert "+$1.5000" in row and "+25.0 %" in row
        assert page.locator("#total-billed").inner_text() == "$6.0000"
