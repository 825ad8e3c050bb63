"""Policy pages: list, version, diff, editor (validate, save), rollback, dry run, shadow."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.policy.models import PolicyShadow, PolicyVersion, ShadowDecision
from apps.policy.services import policy_version_create
from tests.policy.factories import proposed_action

pytestmark = pytest.mark.django_db

V1 = "rules:\n  - id: allow-k8s\n    effect: allow\n    match: {action_type: 'k8s.*'}\n"
V2 = V1 + "  - id: no-deletes\n    effect: deny\n    match: {action_type: 'k8s.delete_*'}\n"
BROKEN = V1 + "  - id: broken\n    effect: sometimes\n"


@pytest.fixture
def lead_client(client, sre):
    client.force_login(sre)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def two_versions():
    v1, _ = policy_version_create(source=V1, created_by="sam", note="first")
    v2, _ = policy_version_create(source=V2, created_by="sam", note="no deletes", activate=False)
    return v1, v2


def test_anonymous_people_are_sent_to_login(client):
    response = client.get("/policy/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_versions_list_marks_the_active_one(
    viewer_client, two_versions, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        response = viewer_client.get("/policy/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<tr class="active-version">' in html
    assert '<span class="badge ok">active</span>' in html
    assert '<span class="badge info">draft</span>' in html
    assert "no deletes" in html and "by sam" in html
    # A viewer sees no buttons that change anything.
    assert "/policy/edit/" not in html
    assert "/policy/2/activate/" not in html


def test_nav_has_the_policy_entry_for_viewers(viewer_client):
    html = viewer_client.get("/policy/").content.decode()
    assert '<a href="/policy/" class="active" aria-current="page">Policy</a>' in html


def test_version_page_shows_numbered_lines(viewer_client, two_versions):
    html = viewer_client.get("/policy/2/").content.decode()
    assert (
        '<tr id="L5"><td class="ln"><a href="#L5">5</a></td><td class="src"><code>  - id: no-deletes</code>'
        in html
    )
    assert viewer_client.get("/policy/9/").status_code == 404


def test_diff_against_the_active_version(viewer_client, two_versions):
    html = viewer_client.get("/policy/2/diff/").content.decode()
    assert "v2 compared with v1 (active)" in html
    assert '<tr class="added"><td class="ln"></td><td class="ln">5</td>' in html
    assert "<code>  - id: no-deletes</code>" in html
    assert '<tr class="removed">' not in html
    reverse = viewer_client.get("/policy/1/diff/?against=2").content.decode()
    assert '<tr class="removed"><td class="ln">5</td><td class="ln"></td>' in reverse


def test_viewers_cannot_edit_or_activate(viewer_client, two_versions):
    assert viewer_client.get("/policy/edit/").status_code == 403
    assert viewer_client.post("/policy/edit/", {"source": V2, "save": "draft"}).status_code == 403
    assert viewer_client.post("/policy/validate/", {"source": V1}).status_code == 403
    assert viewer_client.post("/policy/2/activate/").status_code == 403
    assert viewer_client.post("/policy/shadow/", {"op": "stop"}).status_code == 403
    assert viewer_client.post("/policy/dry-run/", {"source": V1}).status_code == 403
    assert PolicyVersion.objects.get(active=True).number == 1


def test_editor_is_prefilled_with_the_active_source(lead_client, two_versions):
    html = lead_client.get("/policy/edit/").content.decode()
    assert "starting from v1 (active)" in html
    assert "allow-k8s" in html and "no-deletes" not in html
    from_v2 = lead_client.get("/policy/edit/?from=2").content.decode()
    assert "no-deletes" in from_v2


def test_validate_shows_the_error_at_its_line(lead_client, two_versions):
    response = lead_client.post("/policy/validate/", {"source": BROKEN}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-error-lines="6"' in html
    assert '<tr id="L6" class="error-line">' in html
    assert "⚠ rules[1].effect: Invalid enum value &#x27;sometimes&#x27;" in html
    assert '<a href="#" class="goto-line" data-line="6">line 6</a>' in html
    ok = lead_client.post("/policy/validate/", {"source": V2}).content.decode()
    assert "Valid: 2 rules." in ok
    assert PolicyVersion.objects.count() == 2


def test_saving_an_invalid_policy_keeps_the_text_and_saves_nothing(lead_client, two_versions):
    response = lead_client.post("/policy/edit/", {"source": BROKEN, "save": "draft"})
    assert response.status_code == 400
    html = response.content.decode()
    assert '<tr id="L6" class="error-line">' in html
    assert "effect: sometimes" in html
    assert PolicyVersion.objects.count() == 2


def test_save_as_draft_and_save_and_activate(lead_client, two_versions):
    draft = lead_client.post(
        "/policy/edit/", {"source": V2 + "# more\n", "save": "draft", "note": "typo"}
    )
    assert (draft.status_code, draft["Location"]) == (302, "/policy/3/")
    v3 = PolicyVersion.objects.get(number=3)
    assert (v3.active, v3.note, v3.created_by) == (False, "typo", "sam")
    active = lead_client.post("/policy/edit/", {"source": V2 + "# final\n", "save": "activate"})
    assert active["Location"] == "/policy/4/"
    v4 = PolicyVersion.objects.get(number=4)
    assert (v4.active, v4.activated_by) == (True, "sam")
    page = lead_client.get("/policy/4/").content.decode()
    assert "Saved and activated v4." in page


def test_saving_the_active_text_changes_nothing(lead_client, two_versions):
    response = lead_client.post("/policy/edit/", {"source": V1, "save": "activate"}, follow=True)
    assert "This is the active policy v1; nothing changed." in response.content.decode()
    assert PolicyVersion.objects.count() == 2


def test_rollback_asks_for_confirmation_then_activates(lead_client, two_versions):
    policy_version_create(source=V2 + "# v3\n", created_by="sam")
    confirm = lead_client.get("/policy/1/activate/").content.decode()
    assert "Roll back to v1?" in confirm
    assert "Yes, roll back to v1" in confirm
    assert PolicyVersion.objects.get(active=True).number == 3
    done = lead_client.post("/policy/1/activate/", follow=True)
    assert "Rolled back to v1." in done.content.decode()
    v1 = PolicyVersion.objects.get(active=True)
    assert (v1.number, v1.activated_by) == (1, "sam")


def test_dry_run_page_counts_transitions(viewer_client, two_versions, other_agent):
    now = timezone.now()
    proposed_action(other_agent, "del-1", now - timedelta(days=1), action_type="k8s.delete_pod")
    proposed_action(other_agent, "del-2", now - timedelta(days=2), action_type="k8s.delete_pod")
    proposed_action(other_agent, "old", now - timedelta(days=9), action_type="k8s.delete_pod")
    proposed_action(other_agent, "restart", now - timedelta(days=1))
    html = viewer_client.get("/policy/dry-run/?version=2&days=7").content.decode()
    assert '<div class="value">3</div><div class="label">proposals re-decided</div>' in html
    assert (
        '<td><span class="badge approved">approved</span></td><td>→</td><td><span class="badge denied">denied</span></td><td class="num">2</td>'
        in html
    )
    assert 'href="/actions/del-1/"' in html and 'href="/actions/old/"' not in html
    wide = viewer_client.get("/policy/dry-run/?version=2&days=30").content.decode()
    assert '<td class="num">3</td>' in wide
    clamped = viewer_client.get("/policy/dry-run/?version=2&days=500").content.decode()
    assert "A dry run covers 1 to 90 days; showing 90." in clamped
    nonsense = viewer_client.get("/policy/dry-run/?version=2&days=soon").content.decode()
    assert "“soon” is not a number of days; showing 7." in nonsense


def test_dry_run_of_the_editors_text(lead_client, two_versions, other_agent):
    proposed_action(
        other_agent, "del-1", timezone.now() - timedelta(hours=1), action_type="k8s.delete_pod"
    )
    html = lead_client.post(
        "/policy/dry-run/", {"source": V2, "days": "7"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "the editor&#x27;s text against the proposals of the last 7 days" in html
    assert "<html" not in html
    bad = lead_client.post("/policy/dry-run/", {"source": BROKEN}, HTTP_HX_REQUEST="true")
    assert '<tr id="L6" class="error-line">' in bad.content.decode()


def test_shadow_start_and_stop_from_the_page(lead_client, two_versions, other_agent):
    response = lead_client.post(
        "/policy/shadow/", {"op": "start", "version": "2", "agents": ["k8s-healer"]}, follow=True
    )
    assert "v2 now shadows the active policy for k8s-healer." in response.content.decode()
    shadow = PolicyShadow.objects.get()
    assert (shadow.running, shadow.agents, shadow.started_by) == (True, ["k8s-healer"], "sam")
    ShadowDecision.objects.create(
        shadow=shadow,
        version=shadow.version,
        action_id="act-9",
        agent="k8s-healer",
        action_type="k8s.delete_pod",
        active_version=1,
        active_status="approved",
        active_reasons=["Approved by the policy"],
        shadow_status="denied",
        shadow_reasons=["Denied: no deletes"],
        differs=True,
        evaluated_at=timezone.now(),
    )
    page = lead_client.get("/policy/shadow/").content.decode()
    assert '<div class="value">1</div><div class="label">proposals evaluated</div>' in page
    assert 'href="/actions/act-9/"' in page and "Denied: no deletes" in page
    refused = lead_client.post(
        "/policy/shadow/", {"op": "start", "version": "2", "agents": ["k8s-healer"]}, follow=True
    )
    assert "A shadow of v2 is already running; stop it first." in refused.content.decode()
    stopped = lead_client.post("/policy/shadow/", {"op": "stop"}, follow=True)
    assert "Stopped the shadow of v2." in stopped.content.decode()
    assert PolicyShadow.objects.get().running is False


def test_editor_keeps_a_leading_blank_line_and_normalises_line_ends(lead_client, two_versions):
    html = lead_client.get("/policy/edit/").content.decode()
    # Browsers drop one newline right after <textarea>: the template adds one for them.
    assert 'rows="30">\n' + V1.replace("'", "&#x27;") in html
    lead_client.post("/policy/edit/", {"source": V2.replace("\n", "\r\n"), "save": "draft"})
    assert PolicyVersion.objects.get(number=3).source == V2
