import pytest
from django.urls import reverse

from tests.conftest import event, post_batch

pytestmark = pytest.mark.django_db


def test_login_page_renders_for_anonymous(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Log in" in response.content
    assert client.get(reverse("audit:events")).status_code == 302


def test_audit_log_shows_events_with_filters(client, viewer, agent_client):
    post_batch(
        agent_client,
        [
            event(
                type="alert",
                data={"name": "DiskFillingUp", "severity": "warning"},
                incident_id="INC-7",
            ),
            event(data={"text": "looked at grafana"}, incident_id="INC-8"),
        ],
    )
    client.force_login(viewer)
    page = client.get(reverse("audit:events")).content.decode()
    assert "DiskFillingUp" in page and "looked at grafana" in page
    filtered = client.get(reverse("audit:events"), {"incident_id": "INC-7"}).content.decode()
    assert "DiskFillingUp" in filtered and "looked at grafana" not in filtered
    partial = client.get(
        reverse("audit:events"), {"type": "note"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in partial and "looked at grafana" in partial


def test_audit_log_query_count_does_not_grow_with_rows(
    client, viewer, agent_client, django_assert_max_num_queries
):
    post_batch(agent_client, [event() for _ in range(60)])
    client.force_login(viewer)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("audit:events")).status_code == 200


def test_navigation_shows_only_what_the_role_may_use(client, viewer, admin_person):
    client.force_login(viewer)
    page = client.get(reverse("home")).content.decode()
    assert "Audit log" in page
    assert "Agents &amp; tokens" not in page
    assert client.get(reverse("fleet:agents")).status_code == 403
    client.force_login(admin_person)
    assert "Agents &amp; tokens" in client.get(reverse("home")).content.decode()


def test_admin_mints_a_token_shown_once(client, admin_person, agent):
    client.force_login(admin_person)
    response = client.post(
        reverse("fleet:agent", args=[agent.slug]),
        {"name": "ci", "scopes": ["events:write"], "ttl": "7d"},
    )
    page = response.content.decode()
    assert "shown only once" in page
    token = page.split('id="new-token" class="mono">')[1].split("<")[0]
    assert token.startswith("opsa_")
    assert token not in client.get(reverse("fleet:agent", args=[agent.slug])).content.decode()


def test_event_detail_and_ledger_pages(client, viewer, agent_client):
    from tests.conftest import llm_call

    item = llm_call(request="line one\nline two", response="restart api", labels={"env": "prod"})
    post_batch(agent_client, [item])
    client.force_login(viewer)
    detail = client.get(reverse("audit:event", args=[item["id"]])).content.decode()
    assert "Merkle root" in detail
    assert "line one\nline two" in detail  # free text shown as text, newlines kept
    assert "&quot;env&quot;: &quot;prod&quot;" in detail  # nested data as JSON, not Python repr
    ledger = client.get(reverse("audit:ledger")).content.decode()
    assert "never verified" in ledger


def test_token_form_explains_a_bad_lifetime(client, admin_person, agent):
    client.force_login(admin_person)
    page = client.post(
        reverse("fleet:agent", args=[agent.slug]), {"scopes": ["events:write"], "ttl": "forever"}
    ).content.decode()
    assert "is not a duration" in page
    assert "shown only once" not in page


def test_personal_token_page_mints_for_the_person(client, viewer):
    client.force_login(viewer)
    page = client.post(
        reverse("accounts:tokens"), {"name": "dashboards in git", "ttl": "90d"}
    ).content.decode()
    token = page.split('id="new-token" class="mono">')[1].split("<")[0]
    assert token.startswith("opsp_")
    assert viewer.personal_tokens.get().name == "dashboards in git"


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "2026-01-01T00:00:00|not-a-uuid", "x|y|z", "2026-99-99T00:00:00+00:00|" + "0" * 32],
)
def test_a_malformed_page_cursor_shows_the_newest_page(client, viewer, agent_client, cursor):
    post_batch(agent_client, [event(data={"text": "newest"})])
    client.force_login(viewer)
    response = client.get(reverse("audit:events"), {"before": cursor})
    assert response.status_code == 200
    assert "newest" in response.content.decode()


def test_older_pages_follow_the_cursor(client, viewer, agent_client):
    from datetime import UTC, datetime, timedelta

    base = datetime(2026, 11, 1, tzinfo=UTC)
    post_batch(
        agent_client,
        [event(data={"text": f"note {i:03d}"}, ts=base + timedelta(minutes=i)) for i in range(60)],
    )
    client.force_login(viewer)
    first = client.get(reverse("audit:events"), {"type": "note"})
    assert "note 059" in first.content.decode() and "note 009" not in first.content.decode()
    next_query = first.context["next_query"]
    second = client.get(reverse("audit:events") + "?" + next_query).content.decode()
    assert "note 009" in second and "note 059" not in second


def test_django_admin_shows_the_audit_log_read_only(client, agent_client, django_user_model):
    post_batch(agent_client, [event()])
    superuser = django_user_model.objects.create_superuser("root", password="pw-for-tests-1")
    client.force_login(superuser)
    assert client.get("/admin/audit/event/").status_code == 200
    assert client.get("/admin/audit/event/add/").status_code == 403
    assert client.get("/admin/fleet/agent/").status_code == 200


def test_admin_creates_a_team_and_an_agent_in_the_ui(client, admin_person):
    from apps.fleet.models import Agent, Team

    client.force_login(admin_person)
    response = client.post(
        reverse("fleet:agents"), {"create": "team", "team-slug": "search", "team-name": "Search"}
    )
    assert response.status_code == 302
    assert Team.objects.get(slug="search").name == "Search"
    again = client.post(reverse("fleet:agents"), {"create": "team", "team-slug": "search"})
    assert "already exists" in again.content.decode()
    response = client.post(
        reverse("fleet:agents"),
        {
            "create": "agent",
            "agent-slug": "search-bot",
            "agent-team": "search",
            "agent-autonomy_mode": "observe",
            "agent-environment": "prod",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("fleet:agent", args=["search-bot"])
    agent = Agent.objects.get(slug="search-bot")
    assert (agent.team.slug, agent.autonomy_mode) == ("search", "observe")
    bad = client.post(
        reverse("fleet:agents"),
        {"create": "agent", "agent-slug": "Not A Slug", "agent-team": "search"},
    )
    assert bad.status_code == 200
    assert "Enter a valid" in bad.content.decode()
    assert not Agent.objects.filter(team__slug="search").exclude(slug="search-bot").exists()


def test_a_page_outside_ones_roles_explains_which_role_it_needs(client, viewer):
    client.force_login(viewer)
    response = client.get("/policy/edit/")
    assert response.status_code == 403
    text = response.content.decode()
    assert "Not allowed" in text
    assert "This page needs one of the roles: sre_lead." in text
    assert "Your roles: viewer." in text


def test_an_unknown_address_is_a_friendly_404(client, viewer):
    client.force_login(viewer)
    response = client.get("/actions/no-such-action/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode()


def test_the_agent_page_has_a_plain_title_and_one_callback_panel(client, admin_person, agent):
    client.force_login(admin_person)
    page = client.get(f"/fleet/agents/{agent.slug}/").content.decode()
    assert f"<title>{agent.slug} · opsdash</title>" in page
    assert page.count('id="callback"') == 1
