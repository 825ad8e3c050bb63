"""FinOps in a real Chromium: upload a bill, watch its row turn from queued to done (HTMX
polling, no reload) as the real worker imports it, open the error report."""

import os
from pathlib import Path

import pytest

from apps.billing.models import BillingImport
from tests.billing.test_errors import HEADER, focus_row
from tests.browser.test_newcomer_flow import browser  # noqa: F401 - the Chromium fixture
from tests.system.servers import base_env, celery_worker, db_url, gunicorn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.worker]


def test_finops_uploads_a_bill_and_sees_it_imported(
    browser,  # noqa: F811
    redis_broker,
    finops,
    tmp_upload_dir: Path,
    tmp_path: Path,
):
    bill = tmp_path / "october.csv"
    bill.write_text(HEADER + focus_row("12.34") + focus_row("5.66") + focus_row("oops"))
    env = base_env(
        DATABASE_URL=db_url(),
        CELERY_BROKER_URL=redis_broker,
        BILLING_UPLOAD_DIR=str(tmp_upload_dir),
    )
    with gunicorn(env) as url, celery_worker(env):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{url}/billing/imports/")
        page.fill("#id_username", "fiona")
        page.fill("#id_password", "pw-for-tests-1")
        page.click("button[type=submit]")
        page.wait_for_url("**/billing/imports/")
        assert page.locator("nav.sidebar").get_by_text("Billing imports").is_visible()

        page.set_input_files("#id_file", str(bill))
        page.select_option("#id_format", "focus")
        page.click("text=Upload and import")
        imp = BillingImport.objects.get()
        row = page.locator(f"#import-{imp.pk}")
        # The row is swapped in place by its own polling until the worker is done.
        row.locator("text=done").wait_for(timeout=60_000)
        assert "USD 18.00" in row.inner_text()
        assert "october.csv is queued as import" in page.locator(".messages").inner_text()
        if os.environ.get("BILLING_SCREENSHOTS"):
            page.screenshot(path=os.environ["BILLING_SCREENSHOTS"] + "/imports.png", full_page=True)

        row.locator("a.warn-text").click()
        page.wait_for_url(f"**/billing/imports/{imp.pk}/#row-errors")
        errors = page.locator("#row-errors").inner_text()
        assert "1 row rejected" in errors
        assert "not a decimal number: 'oops'" in errors
        if os.environ.get("BILLING_SCREENSHOTS"):
            page.screenshot(path=os.environ["BILLING_SCREENSHOTS"] + "/detail.png", full_page=True)
