"""The policy editor in a real Chromium: Validate marks the bad line, then Save as draft."""

import pytest
from django.db import connection

from apps.policy.models import PolicyVersion
from apps.policy.services import policy_version_create
from tests.browser.test_newcomer_flow import browser  # noqa: F401  (the Chromium fixture)
from tests.system.servers import base_env, db_url, gunicorn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

V1 = "rules:\n  - id: allow-k8s\n    effect: allow\n    match: {action_type: 'k8s.*'}\n"
BROKEN = V1 + "  - id: broken\n    effect: sometimes\n"
FIXED = V1 + "  - id: fixed\n    effect: deny\n    match: {action_type: 'db.*'}\n"


def test_lead_validates_sees_the_line_fixes_and_saves_a_draft(browser, sre):  # noqa: F811
    if connection.vendor == "sqlite":
        pytest.skip("needs a database shared with the server process")
    policy_version_create(source=V1, created_by="sam")
    with gunicorn(base_env(DATABASE_URL=db_url())) as url:
        page = browser.new_page()
        page.goto(f"{url}/policy/edit/")
        page.fill("#id_username", "sam")
        page.fill("#id_password", "pw-for-tests-1")
        page.click("button[type=submit]")
        page.wait_for_url("**/policy/edit/")
        assert page.input_value("#policy-source") == V1

        page.fill("#policy-source", BROKEN)
        page.click("button:text('Validate')")
        page.wait_for_selector("#validation tr.error-line")
        assert page.locator("#validation tr.error-line td.ln").inner_text() == "6"
        assert (
            "rules[1].effect: Invalid enum value 'sometimes'"
            in page.locator("#validation .line-error").inner_text()
        )
        assert page.locator("#policy-gutter .bad").inner_text() == "6"

        page.fill("#policy-source", FIXED)
        page.click("button:text('Validate')")
        page.wait_for_selector("text=Valid: 2 rules.")
        assert page.locator("#policy-gutter .bad").count() == 0

        page.fill("#policy-note", "deny db")
        page.click("button:text('Save as draft')")
        page.wait_for_url("**/policy/2/")
        assert "Saved v2 as a draft." in page.locator(".messages").inner_text()
    v2 = PolicyVersion.objects.get(number=2)
    assert (v2.source, v2.active, v2.note, v2.created_by) == (FIXED, False, "deny db", "sam")
