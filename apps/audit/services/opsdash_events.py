import uuid
from datetime import datetime
from typing import Any

from django.utils import timezone

from apps.audit.canonical import encode_json, format_ts
from apps.audit.models import EventSource
from apps.audit.services.ingest import ALL_TYPES, IngestResult, event_batch_ingest
from apps.fleet.models import Agent


def opsdash_event_record(
    *,
    agent: Agent,
    event_type: str,
    data: dict[str, Any],
    action_id: str | None = None,
    incident_id: str | None = None,
    ts: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> IngestResult:
    """Writes an event that only opsdash may write (token changes, approvals, halts, …).
    A caller that may run twice for one fact passes a deterministic `event_id`."""
    item: dict[str, Any] = {
        "id": str(event_id or uuid.uuid4()),
        "ts": format_ts(ts or timezone.now()),
        "agent": agent.slug,
        "type": event_type,
        "data": data,
    }
    if action_id:
        item["action_id"] = action_id
    if incident_id:
        item["incident_id"] = incident_id
    result = event_batch_ingest(
        items=[encode_json(item)],
        source=EventSource.OPSDASH,
        allowed_types=ALL_TYPES,
        agents_by_slug=lambda slug: agent if slug == agent.slug else None,
    )
    if result.rejected:
        raise ValueError(f"opsdash wrote an invalid {event_type} event: {result.rejected}")
    return result
