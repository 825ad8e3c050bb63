"""Per-minute SLO rollups, kept up to date by the derived consumer "slo" and rebuildable.

The consumer runs after each sealed batch (apps.audit.services.derived, under the cursor row
lock, so a task run twice counts once). For the new events it
  1. folds alerts/outcomes into the Incident read model,
  2. recomputes the facts of every subject they touch — and of the subjects depending on
     them: an incident's first alert moves its actions' time to propose, an action's accuracy
     moves its incident's recall,
  3. moves each matching SLO's rollups by the difference between the subject's old and new
     fact (old minute -1 total / -good, new minute +1 / +good).
Every step is one query per table whatever the number of events, keyed by indexed ids, so the
cost grows with the new events, never with the stored history.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q

from apps.actions.incidents import (
    IncidentEvent,
    incidents_apply,
    outcome_resolved,
)
from apps.actions.services import FOLDED_TYPES
from apps.audit.models import DerivedCursor, Event, EventType, LedgerSeal
from apps.slo.costs import action_costs
from apps.slo.facts import (
    ACTION_KINDS,
    MICRO,
    Fact,
    action_rows,
    fact_from_row,
    fact_row,
    facts_compute,
    recall_fact,
    recall_rows,
)
from apps.slo.models import THRESHOLD_KINDS, SliFact, SliKind, Slo, SloRollup, SloScope

logger = logging.getLogger(__name__)

CONSUMER = "slo"


# --- Which facts an SLO counts, and which of them are good -----------------------------------


def _window_seconds(window: timedelta) -> Decimal:
    return Decimal(window // timedelta(microseconds=1)) * MICRO


def slo_fact_filter(slo: Slo) -> Q:
    """The SliFact rows an SLO counts: its kind, scope (agent / team / all), agent version.

    A threshold SLO without a threshold counts nothing (there is no bar to meet)."""
    if slo.sli == SliKind.PROMQL or (slo.sli in THRESHOLD_KINDS and slo.threshold is None):
        return Q(pk__in=[])
    q = Q(kind=slo.sli, counted=True)
    if slo.scope == SloScope.AGENT:
        q &= Q(agent_id=slo.agent_id)
    elif slo.scope == SloScope.TEAM:
        q &= Q(team_id=slo.team_id)
    if slo.agent_version:
        q &= Q(agent_version=slo.agent_version)
    return q


def slo_fact_good(slo: Slo) -> Q:
    """Among the facts an SLO counts, the good ones (its threshold / rollback window applied)."""
    if slo.sli in THRESHOLD_KINDS:
        return Q(value__lte=slo.threshold)
    if slo.sli == SliKind.ROLLBACK:
        return Q(value__isnull=True) | Q(value__gt=_window_seconds(slo.rollback_window))
    return Q(good=True)


@dataclass(frozen=True)
class _Matcher:
    """slo_fact_filter and slo_fact_good evaluated in Python, for the incremental path."""

    slo_id: int
    kind: str
    agent_id: int | None
    team_id: int | None
    agent_version: str
    threshold: Decimal | None
    rollback_seconds: Decimal

    @classmethod
    def of(cls, slo: Slo) -> "_Matcher":
        return cls(
            slo_id=slo.pk,
            kind=slo.sli,
            agent_id=slo.agent_id if slo.scope == SloScope.AGENT else None,
            team_id=slo.team_id if slo.scope == SloScope.TEAM else None,
            agent_version=slo.agent_version,
            threshold=None if slo.threshold is None else Decimal(slo.threshold),
            rollback_seconds=_window_seconds(slo.rollback_window),
        )

    def counts(self, fact: Fact) -> bool:
        if fact.kind != self.kind:
            return False
        if self.kind in THRESHOLD_KINDS and self.threshold is None:
            return False
        if self.agent_id is not None and fact.agent_id != self.agent_id:
            return False
        if self.team_id is not None and fact.team_id != self.team_id:
            return False
        return not (self.agent_version and fact.agent_version != self.agent_version)

    def good(self, fact: Fact) -> bool:
        if self.kind in THRESHOLD_KINDS:
            return (
                fact.value is not None
                and self.threshold is not None
                and fact.value <= self.threshold
            )
        if self.kind == SliKind.ROLLBACK:
            return fact.value is None or fact.value > self.rollback_seconds
        return fact.good is True


# --- The consumer -------------------------------------------------------------------------

# An llm_call moves its action's cost and energy (cost_per_action, energy_per_action) even
# though it does not fold into the Action read model.
APPLIED_TYPES = FOLDED_TYPES | {EventType.LLM_CALL}


def slo_apply(seals: Sequence[LedgerSeal]) -> None:
    """Derived consumer "slo": applies newly sealed batches to incidents, facts and rollups."""
    rows = (
        Event.objects.filter(batch_id__in=[s.batch_id for s in seals], type__in=APPLIED_TYPES)
        .filter(Q(action_id__isnull=False) | Q(incident_id__isnull=False))
        .values_list(
            "id", "ts", "agent_id", "type", "action_id", "incident_id", "agent_version", "data"
        )
    )
    action_ids: set[str] = set()
    incident_events: list[IncidentEvent] = []
    for event_id, ts, agent_id, kind, action_id, incident_id, version, data in rows:
        if action_id:
            action_ids.add(action_id)
        if incident_id and kind in (EventType.ALERT, EventType.OUTCOME):
            incident_events.append(
                IncidentEvent(
                    event_id=str(event_id),
                    ts=ts,
                    agent_id=agent_id,
                    event_type=kind,
                    incident_id=incident_id,
                    resolved=outcome_resolved(data) if kind == EventType.OUTCOME else None,
                    agent_version=version or "",
                )
            )
    changes = incidents_apply(incident_events)
    subjects_refresh(
        action_ids=action_ids, alert_changed=changes.alert_changed, incident_ids=changes.changed
    )


def subjects_refresh(
    *,
    action_ids: Iterable[str],
    alert_changed: Iterable[str] = (),
    incident_ids: Iterable[str] = (),
) -> int:
    """Recomputes the facts of these actions and incidents (and of their dependents) and moves
    the rollups by the difference; returns how many facts changed. Call under the cursor lock.

    `alert_changed`: incidents whose first alert moved (their actions' time to propose moves).
    """
    action_ids = set(action_ids)
    alert_changed = set(alert_changed)
    where = Q(action_id__in=action_ids) if action_ids else Q(pk__in=[])
    if alert_changed:
        where |= Q(incident_id__in=alert_changed)
    recall_ids = set(incident_ids)
    loaded = list(action_rows(where)) if action_ids or alert_changed else []
    for row in loaded:
        if row.incident_id:
            recall_ids.add(row.incident_id)
    if not loaded and not recall_ids:
        return 0
    new: dict[tuple[str, str], Fact] = {}
    costs = action_costs([r.action_id for r in loaded]) if loaded else {}
    for fact in facts_compute(loaded, costs):
        new[fact.key] = fact
    if recall_ids:
        for recall in recall_rows(Q(incident_id__in=recall_ids)):
            fact = recall_fact(recall)
            new[fact.key] = fact

    keys = [(kind, r.action_id) for r in loaded for kind in ACTION_KINDS]
    keys += [(SliKind.RECALL, incident_id) for incident_id in recall_ids]
    old = _facts_stored(keys)

    writes: list[SliFact] = []
    moves: list[tuple[Fact | None, Fact | None]] = []
    for key in new.keys() | old.keys():
        before = old.get(key)
        after = new.get(key)
        if before == after:
            continue
        moves.append((before, after))
        if after is not None:
            writes.append(fact_row(after))
        elif before is not None:
            writes.append(fact_row(before, counted=False))
    if not moves:
        return 0
    SliFact.objects.bulk_create(
        writes,
        update_conflicts=True,
        unique_fields=["kind", "subject"],
        update_fields=["agent", "team", "agent_version", "minute", "counted", "good", "value"],
    )
    _rollups_move(moves)
    return len(moves)


def _rollups_move(moves: Sequence[tuple[Fact | None, Fact | None]]) -> None:
    kinds = {f.kind for pair in moves for f in pair if f is not None}
    matchers: dict[str, list[_Matcher]] = defaultdict(list)
    for slo in Slo.objects.filter(sli__in=kinds):
        matchers[slo.sli].append(_Matcher.of(slo))
    if not matchers:
        return
    deltas: dict[tuple[int, datetime], list[int]] = defaultdict(lambda: [0, 0])
    removed = False
    for before, after in moves:
        for fact, sign in ((before, -1), (after, 1)):
            if fact is None:
                continue
            for m in matchers.get(fact.kind, ()):
                if m.counts(fact):
                    delta = deltas[(m.slo_id, fact.minute)]
                    delta[0] += sign * m.good(fact)
                    delta[1] += sign
                    removed = removed or sign < 0
    rollups_add({k: (g, t) for k, (g, t) in deltas.items() if g or t})
    if removed:
        # A minute whose last fact moved away holds 0/0: drop it, as a rebuild would not write it.
        _rollups_drop_empty([k for k, (g, t) in deltas.items() if t < 0])


def _facts_stored(keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Fact]:
    """The counted facts stored under these (kind, subject) keys: one query.

    On PostgreSQL a join with the exact keys, so the plan is a unique-index probe per key
    whatever the table's size or statistics (an IN list per column let the planner scan a
    whole kind)."""
    if not keys:
        return {}
    if connection.vendor != "postgresql":
        kinds: dict[str, set[str]] = defaultdict(set)
        for kind, subject in keys:
            kinds[kind].add(subject)
        q = Q(pk__in=[])
        for kind, subjects in kinds.items():
            q |= Q(kind=kind, subject__in=subjects)
        return {
            (f.kind, f.subject): fact_from_row(f) for f in SliFact.objects.filter(q, counted=True)
        }
    rows = SliFact.objects.raw(
        "SELECT f.* FROM slo_slifact f"
        " JOIN unnest(%s::text[], %s::text[]) AS k(kind, subject)"
        " ON f.kind = k.kind AND f.subject = k.subject WHERE f.counted",
        [[k[0] for k in keys], [k[1] for k in keys]],
    )
    return {(f.kind, f.subject): fact_from_row(f) for f in rows}


def _rollups_drop_empty(keys: Sequence[tuple[int, datetime]]) -> None:
    """Deletes the rollups among these (slo, minute) keys that hold 0/0."""
    if not keys:
        return
    if connection.vendor != "postgresql":
        SloRollup.objects.filter(
            slo_id__in={k[0] for k in keys}, minute__in={k[1] for k in keys}, total=0
        ).delete()
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM slo_slorollup r USING unnest(%s::bigint[], %s::timestamptz[])"
            " AS k(slo_id, minute) WHERE r.slo_id = k.slo_id AND r.minute = k.minute"
            " AND r.total = 0",
            [[k[0] for k in keys], [k[1] for k in keys]],
        )


def rollups_add(deltas: dict[tuple[int, datetime], tuple[int, int]]) -> None:
    """Adds (good, total) to each (slo, minute) rollup in one upsert statement."""
    if not deltas:
        return
    table = connection.ops.quote_name(SloRollup._meta.db_table)
    update = (
        f"ON CONFLICT (slo_id, minute) DO UPDATE SET good = {table}.good + EXCLUDED.good, "
        f"total = {table}.total + EXCLUDED.total"
    )
    keys = sorted(deltas)  # one order for every writer: no deadlock between two upserts
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {table} (slo_id, minute, good, total) "  # noqa: S608
                "SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::bigint[], %s::bigint[]) "
                + update,
                [
                    [k[0] for k in keys],
                    [k[1] for k in keys],
                    [deltas[k][0] for k in keys],
                    [deltas[k][1] for k in keys],
                ],
            )
        else:
            adapt = connection.ops.adapt_datetimefield_value
            cursor.executemany(
                f"INSERT INTO {table} (slo_id, minute, good, total) VALUES (%s, %s, %s, %s) "  # noqa: S608
                + update,
                [(k[0], adapt(k[1]), deltas[k][0], deltas[k][1]) for k in keys],
            )


# --- Rebuilds ------------------------------------------------------------------------------


def slo_actions_refresh(*, action_ids: Iterable[str]) -> int:
    """Recomputes the facts of these actions now (their cost changed outside ingest, e.g. a
    price correction), under the consumer's lock; returns how many facts changed."""
    ids = set(action_ids)
    if not ids:
        return 0
    with transaction.atomic():
        consumer_cursor_locked()
        return subjects_refresh(action_ids=ids)


def consumer_cursor_locked() -> DerivedCursor:
    """The consumer's cursor row, locked until the transaction ends (call inside atomic)."""
    DerivedCursor.objects.get_or_create(name=CONSUMER)
    qs = DerivedCursor.objects.filter(name=CONSUMER)
    if connection.features.has_select_for_update:
        qs = qs.select_for_update()
    return qs.get()


def rollups_insert_one(slo: Slo) -> int:
    """One SQL aggregate: the SLO's per-minute good/total from the facts it counts."""
    if slo.sli == SliKind.PROMQL:
        return 0
    qs = (
        SliFact.objects.filter(slo_fact_filter(slo))
        .order_by()
        .values("minute")
        .annotate(g=Count("pk", filter=slo_fact_good(slo)), t=Count("pk"))
    )
    sql, params = qs.query.sql_with_params()
    table = connection.ops.quote_name(SloRollup._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (slo_id, minute, good, total) "  # noqa: S608 (compiled ORM SQL)
            f"SELECT %s, q.minute, q.g, q.t FROM ({sql}) q",
            [slo.pk, *params],
        )
        return int(cursor.rowcount or 0)


def rollups_select_pg(
    slos: Sequence[Slo], *, per_fact: bool = False
) -> tuple[str, list[Any]] | None:
    """PostgreSQL: one SELECT of (slo_id, minute, good, total) for all these SLOs from the
    counted facts, in one pass (the matching rules of _Matcher, as SQL); None when none of
    them counts facts. `per_fact`: the rows before grouping instead, (slo_id, minute, good)
    per fact and SLO counting it."""
    matchers = [
        _Matcher.of(slo)
        for slo in slos
        if slo.sli != SliKind.PROMQL and not (slo.sli in THRESHOLD_KINDS and slo.threshold is None)
    ]
    if not matchers:
        return None

    def mode(kind: str) -> str:
        return "t" if kind in THRESHOLD_KINDS else "r" if kind == SliKind.ROLLBACK else "g"

    return _PG_MATCHED if per_fact else _PG_ROLLUPS_SELECT, [
        [m.slo_id for m in matchers],
        [m.kind for m in matchers],
        [m.agent_id for m in matchers],
        [m.team_id for m in matchers],
        [m.agent_version for m in matchers],
        [mode(m.kind) for m in matchers],
        [m.threshold for m in matchers],
        [m.rollback_seconds for m in matchers],
    ]


# Each counted fact with each SLO that counts it, and whether it is good for that SLO.
_PG_MATCHED = """
SELECT s.slo_id, f.minute,
    (CASE s.mode
        WHEN 't' THEN f.value <= s.threshold
        WHEN 'r' THEN f.value IS NULL OR f.value > s.rollback
        ELSE f.good END) AS good
FROM slo_slifact f
JOIN unnest(%s::bigint[], %s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::text[],
            %s::numeric[], %s::numeric[])
    AS s(slo_id, kind, agent_id, team_id, version, mode, threshold, rollback)
  ON f.kind = s.kind
 AND (s.agent_id IS NULL OR f.agent_id = s.agent_id)
 AND (s.team_id IS NULL OR f.team_id = s.team_id)
 AND (s.version = '' OR f.agent_version = s.version)
WHERE f.counted
"""
# Grouped after the good flag is computed, so the rows grouped are three narrow columns.
_PG_ROLLUPS_SELECT = (
    "SELECT slo_id, minute, COUNT(*) FILTER (WHERE good), COUNT(*)"  # noqa: S608 (constants)
    " FROM (" + _PG_MATCHED + ") matched GROUP BY slo_id, minute"
)


def slo_rollups_rebuild(slo: Slo) -> None:
    """Recomputes one SLO's rollups from the facts (after it is created or what it counts
    changes). Holds the consumer's lock so no increment lands between the delete and the insert.
    A PromQL SLO's rollups come from Prometheus and are left alone."""
    if slo.sli == SliKind.PROMQL:
        return
    with transaction.atomic():
        consumer_cursor_locked()
        SloRollup.objects.filter(slo=slo).delete()
        rollups_insert_one(slo)
