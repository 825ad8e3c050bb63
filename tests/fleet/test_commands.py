import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from apps.fleet.models import Agent, AgentToken, Team
from tests.conftest import event

pytestmark = pytest.mark.django_db


def _run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue()


def test_team_agent_and_token_from_the_command_line_work_end_to_end():
    _run("create_team", "payments")
    _run("create_agent", "pay-bot", "--team", "payments", "--mode", "observe")
    output = _run("mint_token", "pay-bot", "--scopes", "events:write,gate:check", "--ttl", "30d")
    raw = output.strip().splitlines()[-1]
    assert raw.startswith("opsa_")
    assert Agent.objects.get(slug="pay-bot").team == Team.objects.get(slug="payments")
    token = AgentToken.objects.get()
    assert sorted(token.scopes) == ["events:write", "gate:check"]
    assert 29 <= (token.expires_at - token.created_at).days <= 30
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert (
        client.post("/api/v1/events", [event(agent="pay-bot")], format="json").json()["accepted"]
        == 1
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create_agent", "x", "--team", "nope"), "No team 'nope'"),
        (("mint_token", "ghost"), "No agent 'ghost'"),
        (("mint_token", "--user", "nobody"), "No user 'nobody'"),
        (("create_team", "Bad Slug!"), "slug"),
    ],
)
def test_commands_explain_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        _run(*args)


def test_bad_scope_and_ttl_are_refused(agent):
    with pytest.raises(CommandError, match="Unknown scope"):
        _run("mint_token", agent.slug, "--scopes", "events:write,root")
    with pytest.raises(CommandError, match="not a duration"):
        _run("mint_token", agent.slug, "--ttl", "forever")


def test_personal_token_carries_the_persons_roles(make_person):
    make_person("vera", "viewer")
    raw = _run("mint_token", "--user", "vera", "--ttl", "1d").strip().splitlines()[-1]
    assert raw.startswith("opsp_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/events").status_code == 200
    assert client.post("/api/v1/events", [event()], format="json").status_code == 403
    make_person("otto")
    raw = _run("mint_token", "--user", "otto").strip().splitlines()[-1]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/events").status_code == 403


def test_minting_and_revoking_are_audited(agent, admin_person, client):
    _run("mint_token", agent.slug)
    token = AgentToken.objects.get()
    client.force_login(admin_person)
    client.post(f"/fleet/agents/{agent.slug}/tokens/{token.pk}/revoke/")
    changes = [e.data["change"] for e in agent.events.filter(type="token_change").order_by("ts")]
    assert changes == ["minted", "revoked"]
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert json.dumps(changes)
