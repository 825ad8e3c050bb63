import itertools
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from apps.audit.merkle import inclusion_proof, merkle_root, verify_inclusion
from apps.audit.models import Event, LedgerHead, LedgerSeal
from apps.audit.services.ledger import (
    event_inclusion_proof,
    ledger_batch_seal,
    ledger_verify,
    seal_hash_compute,
)
from tests.conftest import event, post_batch

pytestmark = pytest.mark.django_db


def _hashes(n):
    return [uuid.uuid5(uuid.NAMESPACE_OID, str(i)).hex * 2 for i in range(n)]


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17])
def test_every_leaf_has_an_inclusion_proof_that_verifies_offline(size):
    hashes = _hashes(size)
    root = merkle_root(hashes)
    for index in range(size):
        proof = inclusion_proof(hashes, index)
        assert verify_inclusion(hashes[index], index, size, proof, root)
        assert not verify_inclusion(
            hashes[(index + 1) % size] if size > 1 else "0" * 64, index, size, proof, root
        )


def test_batches_chain_and_an_event_proves_its_seal(agent_client):
    for _ in range(3):
        post_batch(agent_client, [event() for _ in range(5)])
    seals = list(LedgerSeal.objects.order_by("seq"))
    for previous, current in itertools.pairwise(seals):
        assert current.prev_seal_hash == previous.seal_hash
    stored = Event.objects.filter(source="api").order_by("received_at", "batch_index").last()
    proof = event_inclusion_proof(stored)
    assert verify_inclusion(
        proof["content_hash"],
        proof["leaf_index"],
        proof["tree_size"],
        proof["proof"],
        proof["merkle_root"],
    )
    report = ledger_verify()
    assert report.ok
    assert report.events_checked == Event.objects.count()


def test_a_seal_hashes_what_it_stores_and_moves_the_head():
    head_before = LedgerHead.objects.get(pk=1)
    batch_id = uuid.uuid4()
    with transaction.atomic():
        seal = ledger_batch_seal(batch_id=batch_id, content_hashes=_hashes(3), source="api")
    stored = LedgerSeal.objects.get(seq=seal.seq)
    assert stored.seq == head_before.seq + 1
    assert stored.prev_seal_hash == head_before.seal_hash
    assert (stored.batch_id, stored.event_count) == (batch_id, 3)
    assert stored.merkle_root == merkle_root(_hashes(3))
    assert stored.sealed_at == seal.sealed_at
    assert (
        stored.seal_hash
        == seal.seal_hash
        == seal_hash_compute(
            seq=stored.seq,
            batch_id=batch_id,
            event_count=3,
            root=stored.merkle_root,
            prev_seal_hash=head_before.seal_hash,
            sealed_at=stored.sealed_at,
            source="api",
        )
    )
    head = LedgerHead.objects.get(pk=1)
    assert (head.seq, head.seal_hash) == (stored.seq, stored.seal_hash)


def _db(value):
    """A UUID as this database stores it (SQLite keeps 32 hex digits, no dashes)."""
    return Event._meta.pk.get_db_prep_value(uuid.UUID(str(value)), connection)


def _tamper(sql, params):
    """Writes behind the API's back, as a database superuser would (triggers off on PostgreSQL)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def _first_bad_seal(capsys):
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit", verbosity=0)
    return str(excinfo.value)


def test_verify_audit_names_the_first_changed_seal(agent_client):
    post_batch(agent_client, [event(data={"text": "ok"})])
    victim = event(data={"text": "original"})
    post_batch(agent_client, [victim, event()])
    post_batch(agent_client, [event()])
    seal = LedgerSeal.objects.get(batch_id=Event.objects.get(pk=victim["id"]).batch_id)
    call_command("verify_audit", verbosity=0)
    _tamper(
        "UPDATE audit_event SET data = %s WHERE id = %s", ['{"text": "forged"}', _db(victim["id"])]
    )
    message = _first_bad_seal(None)
    assert f"seal #{seal.seq}" in message
    assert "changed" in message


def test_verify_audit_finds_a_deleted_event(agent_client):
    victim = event()
    post_batch(agent_client, [victim, event()])
    seal = LedgerSeal.objects.get(batch_id=Event.objects.get(pk=victim["id"]).batch_id)
    _tamper("DELETE FROM audit_event WHERE id = %s", [_db(victim["id"])])
    message = _first_bad_seal(None)
    assert f"seal #{seal.seq}" in message
    assert "deleted" in message


def test_verify_audit_finds_an_event_inserted_behind_the_api(agent_client, agent):
    post_batch(agent_client, [event()])
    original = Event.objects.filter(source="api").get()
    forged_id = uuid.uuid4()
    _tamper(
        "INSERT INTO audit_event (id, ts, received_at, agent_id, type, data, source, content_hash, size_bytes, batch_id, batch_index, agent_version, prompt_version) "
        "SELECT %s, ts, received_at, agent_id, type, data, source, content_hash, size_bytes, %s, 0, '', '' FROM audit_event WHERE id = %s",
        [_db(forged_id), _db(uuid.uuid4()), _db(original.id)],
    )
    message = _first_bad_seal(None)
    assert str(forged_id) in message
    assert "inserted" in message


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="append-only triggers are PostgreSQL's"
)
def test_update_and_delete_on_audit_tables_fail_on_postgresql(agent_client):
    post_batch(agent_client, [event()])
    for sql in (
        "UPDATE audit_event SET type = 'note'",
        "DELETE FROM audit_event",
        "UPDATE audit_ledgerseal SET event_count = 0",
        "DELETE FROM audit_ledgerseal",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
