"""The Energy page in a real Chromium: Plotly draws the stacked chart (a trace per group and
source, estimates hatched), and the dimension and range filters reload the figures."""

import pytest

from tests.browser.test_newcomer_flow import browser  # noqa: F401 - the Chromium fixture
from tests.costs.test_energy_page import fleet_energy  # noqa: F401 - the hand-worked data
from tests.system.servers import base_env, db_url, gunicorn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_finops_reads_the_chart_and_regroups_it(
    browser,  # noqa: F811
    make_person,
    fleet_energy,  # noqa: F811
    tmp_path,
):
    make_person("fiona", "finops")
    with gunicorn(base_env(DATABASE_URL=db_url())) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/costs/energy/?by=team&start=2026-10-01&end=2026-10-01")
        page.fill("#id_username", "fiona")
        page.fill("#id_password", "pw-for-tests-1")
        page.click("button[type=submit]")
        page.wait_for_selector("#energy-table")
        page.wait_for_selector(".chart .legendtext")
        # (Plotly orders a stacked chart's legend by its own rules: compared as a set.)
        assert sorted(page.locator(".chart .legendtext").all_text_contents()) == [
            "(unallocated) · estimated",
            "ml · estimated",
            "platform · estimated",
            "platform · measured",
        ]
        # Estimated bars carry a hatch pattern, measured ones do not.
        assert page.locator(".chart pattern").count() >= 3
        assert page.locator("#total-wh").inner_text() == "304.046"
        page.screenshot(path=str(tmp_path / "energy-by-team.png"), full_page=True)

        page.select_option("#id_by", "model")
        page.click("text=Show")
        page.wait_for_url("**by=model**")
        first = page.locator("#energy-table tbody tr").first.locator("td").first
        assert first.inner_text() == "(cloud, no model)"
