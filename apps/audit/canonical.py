"""The canonical encoding of an event: what its content hash, and so the ledger, covers.

The hash must survive a round trip through the database: PostgreSQL's jsonb reorders keys
and prints `1e2` as `100`, so keys are sorted and integral floats are stored as ints before
anything is hashed or written.
"""

import hashlib
from datetime import UTC, datetime
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder(order="sorted")


def format_ts(value: datetime) -> str:
    """UTC, microseconds, `Z`: the one spelling of a time inside a hash."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_event(
    *,
    event_id: str,
    ts: datetime,
    agent_slug: str,
    event_type: str,
    action_id: str | None,
    incident_id: str | None,
    agent_version: str,
    prompt_version: str,
    data: Any,
    source: str,
) -> bytes:
    return _encoder.encode(
        {
            "id": event_id,
            "ts": format_ts(ts),
            "agent": agent_slug,
            "type": event_type,
            "action_id": action_id,
            "incident_id": incident_id,
            "agent_version": agent_version,
            "prompt_version": prompt_version,
            "data": data,
            "source": source,
        }
    )


def content_hash(canonical: bytes) -> str:
    return hashlib.sha256(canonical).hexdigest()


def encode_json(value: Any) -> bytes:
    return _encoder.encode(value)
