"""FinOps caps an agent, the agent spends past it, the halt shows and holds, FinOps resumes."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.db import connection

from apps.fleet.services import agent_token_mint
from tests.browser.test_newcomer_flow import browser  # noqa: F401 (fixture)
from tests.costs.conftest import make_price
from tests.system.servers import base_env, db_url, gunicorn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def spend(url: str, token: str, millions_of_input_tokens: int) -> requests.Response:
    """One llm_call at 3 USD per million input tokens (the test price)."""
    event = {
        "id": str(uuid.uuid4()),
        "ts": (datetime.now(UTC) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "agent": "triage-bot",
        "type": "llm_call",
        "data": {
            "model": "test-sonnet-1",
            "input_tokens": millions_of_input_tokens * 1_000_000,
            "output_tokens": 0,
            "latency_ms": 900,
        },
    }
    return requests.post(
        f"{url}/api/v1/events",
        data=json.dumps([event]),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=10,
    )


def gate(url: str, token: str) -> requests.Response:
    return requests.post(
        f"{url}/api/v1/gate",
        data=json.dumps({"kind": "llm_call", "model": "test-sonnet-1", "input_tokens": 1000}),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=10,
    )


def test_finops_caps_an_agent_sees_the_halt_and_resumes_it(browser, make_person, agent):  # noqa: F811
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith("file:"):
        pytest.skip("in-memory SQLite cannot be shared with a server process")
    make_person("fay", "finops")
    make_price(effective_from=datetime.now(UTC) - timedelta(days=400))
    _, token = agent_token_mint(
        agent=agent, scopes=["events:write", "gate:check"], ttl=timedelta(days=1)
    )
    with gunicorn(base_env(DATABASE_URL=db_url())) as url:
        page = browser.new_page()
        page.goto(f"{url}/budgets/new/")
        page.fill("#id_username", "fay")
        page.fill("#id_password", "pw-for-tests-1")
        page.click("button[type=submit]")
        page.wait_for_url("**/budgets/new/")
        page.fill("#f-name", "Triage per day")
        page.fill("#f-slug", "triage-day")
        page.fill("#f-cap", "10")
        page.select_option("#f-scope", "agent")
        page.select_option("#f-agent", "triage-bot")
        page.select_option("#f-period", "daily")
        page.click("button:has-text('Save budget')")
        page.wait_for_url("**/budgets/triage-day/")
        assert page.locator("#budget-cap").inner_text() == "10.00"

        assert gate(url, token).status_code == 200
        assert spend(url, token, 2).json()["accepted"] == 1  # 6 of 10
        assert spend(url, token, 2).json()["accepted"] == 1  # 12 of 10: halted
        refused = gate(url, token)
        assert refused.status_code == 423
        assert "Budget Triage per day: 12.00 USD of 10.00 USD (100 %)" in refused.json()["reason"]
        assert spend(url, token, 1).json()["accepted"] == 1  # still recorded

        page.goto(f"{url}/budgets/halted/")
        row = page.locator("#halted-table tr[data-agent='triage-bot']")
        assert "Budget Triage per day" in row.inner_text()
        page.goto(f"{url}/budgets/triage-day/")
        assert page.locator("#budget-spent").inner_text() == "15.00"
        assert "100 % halt" in page.locator("#crossings").inner_text()
        page.fill("#resume-reason", "INC-42 needs the agent; cap raised for today")
        page.fill("#resume-cap", "50")
        page.click("#resume button[type=submit]")
        page.wait_for_url("**/budgets/triage-day/")
        assert "Resumed (triage-bot); cap now 50." in page.content()
        assert gate(url, token).status_code == 200
