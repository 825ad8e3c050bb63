"""Writing prepared events: one INSERT … SELECT FROM unnest(…) on PostgreSQL, bulk_create elsewhere."""

import uuid

import psycopg
from django.db import connection
from django.utils import timezone

from apps.audit.models import Event
from apps.audit.services.event_prepare import PreparedEvent


def known_hashes(ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Content hashes of the ids already stored."""
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute("SELECT id, content_hash FROM audit_event WHERE id = ANY(%b)", [ids])
            return dict(cursor.fetchall())
    return dict(Event.objects.filter(id__in=ids).values_list("id", "content_hash"))


_PG_INSERT = """
INSERT INTO audit_event (id, ts, received_at, agent_id, type, action_id, incident_id,
    agent_version, prompt_version, data, source, content_hash, size_bytes, batch_id, batch_index)
SELECT u.id, u.ts, %s, u.agent_id, u.type, u.action_id, u.incident_id, u.av, u.pv,
    u.data::jsonb, %s, u.h, u.sz, %s, u.bi
FROM unnest(%b::uuid[], %b::timestamptz[], %b::bigint[], %b::text[], %b::text[], %b::text[],
    %b::text[], %b::text[], %b::text[], %b::text[], %b::int[], %b::int[])
    AS u(id, ts, agent_id, type, action_id, incident_id, av, pv, data, h, sz, bi)
ORDER BY u.id
ON CONFLICT (id) DO NOTHING
RETURNING id
"""


def events_insert(
    events: list[PreparedEvent], *, batch_id: uuid.UUID, source: str
) -> set[uuid.UUID]:
    """Inserts the events, skipping ids that appeared meanwhile; returns the ids stored."""
    if not events:
        return set()
    now = timezone.now()
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        # Server-side binding with binary arrays (%b): Django's client-side binding, and
        # text-format arrays, escape every quote of every JSON document through Python regexes,
        # which costs more than the insert itself.
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                _PG_INSERT,
                [
                    now,
                    source,
                    batch_id,
                    [e.event_id for e in events],
                    [e.ts for e in events],
                    [e.agent.pk for e in events],
                    [e.event_type for e in events],
                    [e.action_id for e in events],
                    [e.incident_id for e in events],
                    [e.agent_version for e in events],
                    [e.prompt_version for e in events],
                    [e.data_json for e in events],
                    [e.content_hash for e in events],
                    [e.size_bytes for e in events],
                    [e.index for e in events],
                ],
                prepare=True,
            )
            return {row[0] for row in cursor.fetchall()}
    # SQLite: IMMEDIATE transactions serialise writers, so the existence check above holds.
    Event.objects.bulk_create(
        [
            Event(
                id=e.event_id,
                ts=e.ts,
                received_at=now,
                agent_id=e.agent.pk,
                type=e.event_type,
                action_id=e.action_id,
                incident_id=e.incident_id,
                agent_version=e.agent_version,
                prompt_version=e.prompt_version,
                data=e.data,
                source=source,
                content_hash=e.content_hash,
                size_bytes=e.size_bytes,
                batch_id=batch_id,
                batch_index=e.index,
            )
            for e in events
        ]
    )
    return {e.event_id for e in events}
