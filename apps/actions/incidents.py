"""The Incident read model, folded from the alert and outcome events that carry an incident_id.

Maintained by the SLO consumer (apps.slo.rollups) after each sealed batch, and rebuilt from the
events by `manage.py rebuild_rollups`. Every field follows an order-independent rule — the
earliest alert and the latest outcome by (ts, event id) — so events may arrive in any order,
in any batching, and be folded twice without changing the result.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from apps.actions.models import Incident
from apps.audit.models import Event, EventType
from apps.core.db import rows_update

INCIDENT_TYPES = (EventType.ALERT, EventType.OUTCOME)


@dataclass(frozen=True)
class IncidentEvent:
    """The part of an alert or outcome event that the incident read model needs."""

    event_id: str
    ts: datetime
    agent_id: int
    event_type: str
    incident_id: str
    resolved: bool | None = None
    agent_version: str = ""


@dataclass
class IncidentChanges:
    """What a fold changed, so the SLI facts that depend on it can be recomputed."""

    # The first alert (its time, event or agent) changed: time to propose and recall move.
    alert_changed: set[str] = field(default_factory=set)
    # The deciding outcome changed: recall moves.
    outcome_changed: set[str] = field(default_factory=set)

    @property
    def changed(self) -> set[str]:
        return self.alert_changed | self.outcome_changed


def outcome_resolved(data: Any) -> bool:
    """An outcome's `resolved`, read as the Action read model reads it."""
    return bool(data.get("resolved")) if isinstance(data, dict) else False


def _state(incident: Incident) -> tuple[Any, ...]:
    return (
        incident.first_alert_at,
        str(incident.first_alert_event_id or ""),
        incident.agent_id,
        incident.agent_version,
        incident.outcome_at,
        str(incident.outcome_event_id or ""),
        incident.resolved,
    )


def incident_fold(incident: Incident, event: IncidentEvent) -> None:
    """Folds one event in; the result depends only on the set of events folded."""
    if event.event_type == EventType.ALERT:
        current = incident.first_alert_at
        if current is None or (event.ts, event.event_id) < (
            current,
            str(incident.first_alert_event_id or ""),
        ):
            incident.first_alert_at = event.ts
            incident.first_alert_event_id = event.event_id
            incident.agent_id = event.agent_id
            incident.agent_version = event.agent_version
    elif event.event_type == EventType.OUTCOME:
        current = incident.outcome_at
        if current is None or (event.ts, event.event_id) > (
            current,
            str(incident.outcome_event_id or ""),
        ):
            incident.outcome_at = event.ts
            incident.outcome_event_id = event.event_id
            incident.resolved = bool(event.resolved)
            # An incident whose alert we never saw belongs to the agent of its deciding
            # outcome (not of whichever event came first: that would depend on arrival order).
            if incident.first_alert_at is None:
                incident.agent_id = event.agent_id


_FIELDS = [
    "agent",
    "agent_version",
    "first_alert_at",
    "first_alert_event_id",
    "outcome_at",
    "outcome_event_id",
    "resolved",
    "updated_at",
]


def incidents_apply(events: Iterable[IncidentEvent]) -> IncidentChanges:
    """Folds new alert/outcome events into their incidents: one read, one insert, one update.

    The caller serialises calls (the SLO consumer holds its cursor row lock)."""
    by_incident: dict[str, list[IncidentEvent]] = {}
    for event in events:
        by_incident.setdefault(event.incident_id, []).append(event)
    changes = IncidentChanges()
    if not by_incident:
        return changes
    existing = {i.incident_id: i for i in Incident.objects.filter(incident_id__in=by_incident)}
    now = timezone.now()
    created: list[Incident] = []
    updated: list[Incident] = []
    for incident_id, incident_events in by_incident.items():
        incident = existing.get(incident_id)
        is_new = incident is None
        if incident is None:
            incident = Incident(incident_id=incident_id, agent_id=incident_events[0].agent_id)
        before = (None, "", None, "", None, "", None) if is_new else _state(incident)
        for event in incident_events:
            incident_fold(incident, event)
        after = _state(incident)
        if after[:4] != before[:4]:
            changes.alert_changed.add(incident_id)
        if after[4:] != before[4:]:
            changes.outcome_changed.add(incident_id)
        if is_new:
            incident.updated_at = now
            created.append(incident)
        elif after != before:
            incident.updated_at = now
            updated.append(incident)
    Incident.objects.bulk_create(created)
    rows_update(updated, _FIELDS)
    return changes


def incident_events(qs: Any) -> Iterator[IncidentEvent]:
    """IncidentEvents from a queryset of events (alerts without their data, outcomes with it)."""
    rows = (
        qs.filter(type__in=INCIDENT_TYPES, incident_id__isnull=False)
        .exclude(incident_id="")
        .values_list("id", "ts", "agent_id", "type", "incident_id", "agent_version", "data")
    )
    for event_id, ts, agent_id, kind, incident_id, version, data in rows.iterator(chunk_size=20000):
        yield IncidentEvent(
            event_id=str(event_id),
            ts=ts,
            agent_id=agent_id,
            event_type=kind,
            incident_id=incident_id,
            resolved=outcome_resolved(data) if kind == EventType.OUTCOME else None,
            agent_version=version or "",
        )


def incidents_rebuild() -> int:
    """Recomputes every incident from the events; returns how many there are.

    The caller holds the SLO cursor lock and runs this in a transaction. The same fold as the
    incremental path, in Python; PostgreSQL runs PG_INCIDENTS_SELECT instead (apps.slo.rebuild).
    """
    from apps.slo.facts import rows_copy, table_clear

    incidents: dict[str, Incident] = {}

    def fold(events: Iterable[IncidentEvent]) -> None:
        for event in events:
            incident = incidents.get(event.incident_id)
            if incident is None:
                incident = incidents[event.incident_id] = Incident(
                    incident_id=event.incident_id, agent_id=event.agent_id
                )
            incident_fold(incident, event)

    alerts = (
        Event.objects.filter(type=EventType.ALERT, incident_id__isnull=False)
        .exclude(incident_id="")
        .values_list("id", "ts", "agent_id", "incident_id", "agent_version")
    )
    fold(
        IncidentEvent(str(e), ts, a, EventType.ALERT, i or "", agent_version=v or "")
        for e, ts, a, i, v in alerts.iterator(chunk_size=20000)
    )
    fold(incident_events(Event.objects.filter(Q(type=EventType.OUTCOME))))
    now = timezone.now()
    for incident in incidents.values():
        incident.updated_at = now
    table_clear(Incident)
    rows_copy(Incident, list(incidents.values()))
    return len(incidents)


# The same rules as incident_fold: the earliest alert by (ts, id) names the agent; the latest
# outcome by (ts, id) decides; without an alert, the deciding outcome's agent. A uuid orders
# as its text does, so (ts, id) here is (ts, str(id)) there. `resolved` is a JSON boolean
# (the ingest validates it), read as bool() reads it.
PG_INCIDENTS_COLUMNS = (
    "incident_id",
    "agent_id",
    "first_alert_at",
    "first_alert_event_id",
    "agent_version",
    "outcome_at",
    "outcome_event_id",
    "resolved",
)
# The alert and outcome events, read in one pass over the event table (the largest by far);
# the rebuild stages them in a temporary table, which a parallel scan can fill.
PG_INCIDENT_EVENTS_SELECT = """
SELECT incident_id, type, ts, id, agent_id, agent_version,
    type = 'outcome' AND COALESCE((data -> 'resolved') = 'true'::jsonb, false) AS resolved
FROM audit_event
WHERE type IN ('alert', 'outcome') AND incident_id IS NOT NULL AND incident_id <> ''
"""
# The incidents from those events (a table holding PG_INCIDENT_EVENTS_SELECT's rows).
PG_INCIDENTS_SELECT = """
WITH a AS (
    SELECT DISTINCT ON (incident_id) incident_id, ts, id, agent_id, agent_version
    FROM {events} WHERE type = 'alert'
    ORDER BY incident_id, ts, id
), o AS (
    SELECT DISTINCT ON (incident_id) incident_id, ts, id, agent_id, resolved
    FROM {events} WHERE type = 'outcome'
    ORDER BY incident_id, ts DESC, id DESC
)
SELECT COALESCE(a.incident_id, o.incident_id), COALESCE(a.agent_id, o.agent_id), a.ts, a.id,
    COALESCE(a.agent_version, ''), o.ts, o.id, o.resolved
FROM a FULL OUTER JOIN o ON o.incident_id = a.incident_id
"""
