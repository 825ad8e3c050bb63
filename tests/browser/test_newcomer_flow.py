"""The newcomer's flow in a real Chromium: log in, read the audit log, mint a token, post, see it."""

import os
import shutil

import pytest
import requests
from django.db import connection

from tests.conftest import event, service_missing
from tests.system.servers import base_env, db_url, gunicorn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls in the same
    # test (fixtures, teardown flush) are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not path:
        service_missing("Chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def test_newcomer_logs_in_mints_a_token_posts_a_batch_and_sees_it(
    browser, admin_person, agent, tmp_path
):
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith("file:"):
        pytest.skip("in-memory SQLite cannot be shared with a server process")
    env = base_env(DATABASE_URL=db_url())
    with gunicorn(env) as url:
        page = browser.new_page()
        page.goto(f"{url}/audit/events/")
        page.fill("#id_username", "alex")
        page.fill("#id_password", "pw-for-tests-1")
        page.click("button[type=submit]")
        page.wait_for_url("**/audit/events/")
        assert page.locator("h1").inner_text().startswith("Audit log")

        page.goto(f"{url}/fleet/agents/{agent.slug}/")
        page.fill("#id_name", "curl demo")
        page.click("text=Mint token")
        token = page.locator("#new-token").inner_text().strip()
        assert token.startswith("opsa_")

        batch = [
            event(
                type="alert",
                data={"name": "BrowserFlowAlert", "severity": "critical"},
                incident_id="INC-B1",
            )
        ]
        response = requests.post(
            f"{url}/api/v1/events",
            json=batch,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.json()["accepted"] == 1

        page.goto(f"{url}/audit/events/")
        page.select_option("#f-type", "alert")
        page.wait_for_function(
            "document.querySelector('#event-table').innerText.includes('BrowserFlowAlert')"
        )
        page.wait_for_url("**/audit/events/?*type=alert*")  # htmx pushes the filter into the URL
        row = page.locator("#event-table tbody tr").first
        assert "BrowserFlowAlert" in row.inner_text()
        assert "INC-B1" in row.inner_text()
        page.screenshot(path=str(tmp_path / "audit-log.png"), full_page=True)
        row.locator("a").first.click()
        page.wait_for_selector("text=Tamper evidence")
        assert "BrowserFlowAlert" in page.content()
