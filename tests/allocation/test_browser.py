"""FinOps in a real Chromium: add a shared rule on the rules page (only the shared part of the
form shows), watch the recompute it queued go from queued to done (HTMX polling, real worker),
then read the team's new share on the chargeback page."""

from pathlib import Path

import pytest
from django.utils import timezone

from apps.billing.models import AllocationRun
from tests.allocation.conftest import import_bill, line
from tests.browser.test_newcomer_flow import browser  # noqa: F401 - the Chromium fixture
from tests.system.servers import base_env, celery_worker, db_url, gunicorn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.worker]


def test_finops_adds_a_shared_rule_and_the_chargeback_follows(
    browser,  # noqa: F811
    redis_broker,
    finops,
    fleet,
    tmp_path: Path,
):
    # This month: a rule change recomputes the current month and the two before it.
    month = f"{timezone.now():%Y-%m}"
    import_bill(tmp_path, [line("90.00", service="Amazon EKS", month=month, day=1)])
    env = base_env(DATABASE_URL=db_url(), CELERY_BROKER_URL=redis_broker)
    with gunicorn(env) as url, celery_worker(env):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/billing/rules/")
        page.fill("#id_username", "fiona")
        page.fill("#id_password", "pw-for-tests-1")
        page.click("button[type=submit]")
        page.wait_for_url("**/billing/rules/")
        assert page.locator("#id_tag_key").is_visible()
        assert not page.locator("#id_match_service").is_visible()

        page.fill("#id_name", "Shared EKS")
        page.check("input[name=kind][value=shared]")
        assert not page.locator("#id_tag_key").is_visible()
        page.fill("#id_match_service", "*eks*")
        page.check("input[name=teams][value=data]")
        page.check("input[name=teams][value=payments]")
        page.click("text=Add rule")
        page.wait_for_url("**/billing/rules/")
        run = AllocationRun.objects.get()
        row = page.locator(f"#run-{run.pk}")
        row.locator("text=done").wait_for(timeout=60_000)
        assert "rule 'Shared EKS' added" in row.inner_text()
        assert "shared evenly across data, payments" in page.locator("#rules").inner_text()

        page.goto(f"{url}/billing/chargeback/?month={month}")
        assert page.locator("#team-data-USD").inner_text().split("\t")[2] == "45.00"
        assert page.locator("#team-payments-USD").inner_text().split("\t")[2] == "45.00"
        assert page.locator("#team-unallocated-USD").inner_text().split("\t")[2] == "0.00"
        assert page.locator("#total-USD").inner_text().split("\t")[2] == "90.00"
