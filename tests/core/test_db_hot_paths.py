"""The hand-tuned database paths give what the ORM would: same rows, same objects, same refusals."""

import gc
from typing import Any

import pytest
from django.db import connection
from django.db.models import Q

from apps.accounts.authentication import _AGENT_TOKEN, _PERSONAL_TOKEN
from apps.actions.models import Action
from apps.core.db import CompiledLookup, pg_upsert_locked
from apps.fleet.models import AgentToken
from apps.fleet.services import agent_token_mint
from opsdash.warmup import worker_warm_up

pytestmark = pytest.mark.django_db


def test_compiled_lookup_builds_what_the_orm_builds(agent, django_assert_num_queries):
    token, _ = agent_token_mint(agent=agent, scopes=["events:write", "actions:propose"], ttl=None)
    expected = AgentToken.objects.select_related("agent", "agent__team").get(pk=token.pk)

    _AGENT_TOKEN.first(token.digest)  # compiled on first use in this thread
    with django_assert_num_queries(1):
        found = _AGENT_TOKEN.first(token.digest)
        # Related rows came with it (no query each) and JSON arrived decoded.
        assert found.agent.slug == agent.slug
        assert found.agent.team.slug == agent.team.slug
    assert found.pk == expected.pk
    assert sorted(found.scopes) == ["actions:propose", "events:write"]
    assert {f.attname: getattr(found, f.attname) for f in AgentToken._meta.concrete_fields} == {
        f.attname: getattr(expected, f.attname) for f in AgentToken._meta.concrete_fields
    }
    assert found.agent.autonomy_mode == expected.agent.autonomy_mode


def test_compiled_lookup_answers_none_for_an_unknown_value(agent):
    assert _AGENT_TOKEN.first("0" * 64) is None
    assert _PERSONAL_TOKEN.first("0" * 64) is None


def test_compiled_lookup_sees_a_revocation_at_once(agent):
    """No caching of rows: only the query's text is kept."""
    token, _ = agent_token_mint(agent=agent, scopes=["events:write"], ttl=None)
    assert _AGENT_TOKEN.first(token.digest).revoked_at is None
    AgentToken.objects.filter(pk=token.pk).update(revoked_at="2026-01-01T00:00:00Z")
    assert _AGENT_TOKEN.first(token.digest).revoked_at is not None


def test_compiled_lookup_refuses_a_query_that_does_not_use_its_value(agent):
    lookup: CompiledLookup[Any] = CompiledLookup(lambda value: AgentToken.objects.filter(Q()))
    with pytest.raises(ValueError):
        lookup.first("anything")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL statement")
def test_upsert_locked_builds_rows_with_decoded_fields(agent):
    Action.objects.create(
        action_id="known", agent=agent, citations=["logs/app.log:12"], parameters={"replicas": 3}
    )
    rows = pg_upsert_locked(Action, key="action_id", keys=["known", "new"], owners=[agent.pk] * 2)
    by_id = {a.action_id: a for a in rows}
    assert by_id["known"].citations == ["logs/app.log:12"]
    assert by_id["known"].parameters == {"replicas": 3}
    assert by_id["new"].citations == []
    assert by_id["new"].agent_id == agent.pk
    assert Action.objects.filter(action_id="new").exists()


def test_worker_warm_up_hides_long_lived_objects_from_the_collector():
    gc.unfreeze()
    try:
        worker_warm_up()
        assert gc.get_freeze_count() > 50_000  # Django, DRF and our modules
    finally:
        gc.unfreeze()
