"""`rebuild_rollups`: incidents, SLI facts and every SLO's rollups recomputed from the read
models, with the numbers the incremental consumer gives.

On PostgreSQL each derived table is recomputed and then brought to the result by difference
(delete what is gone, update what changed, insert what is new), the way REFRESH MATERIALIZED
VIEW CONCURRENTLY works: readers keep the old rows until the commit (no table lock holds the SLO
pages for the length of a rebuild), and where the incremental path was right — the usual case —
almost nothing is written or logged. Facts and rollups are compared first by a count and a
checksum per kind (or SLO) and day, computed on both sides; only the days that differ are
recomputed row by row and compared by key. An empty table (a new database, or the first rebuild
after an upgrade) is filled in bulk instead, its keys suspended. Elsewhere (SQLite) the tables
are emptied and refilled by the Python rules.
"""

# The SQL built here is made of constants and column names only; every value is a parameter.
# ruff: noqa: S608
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.actions.incidents import (
    PG_INCIDENT_EVENTS_SELECT,
    PG_INCIDENTS_COLUMNS,
    PG_INCIDENTS_SELECT,
    incidents_rebuild,
)
from apps.audit.models import LedgerSeal
from apps.slo.facts import (
    PG_FACTS_COLUMNS,
    PG_FACTS_SELECTS,
    facts_rebuild,
    table_keys_suspended,
)
from apps.slo.models import SliKind, Slo, SloRollup
from apps.slo.rollups import consumer_cursor_locked, rollups_insert_one, rollups_select_pg


@dataclass
class RebuildReport:
    incidents: int
    facts: int
    slos: int
    rollups: int
    head_seq: int
    seconds: float
    # Seconds per step, in order: where a slow rebuild spends its time.
    phases: dict[str, float] = field(default_factory=dict)
    # Rows deleted, updated and inserted per table: what the incremental path had wrong
    # (everything, for a table that was empty).
    changed: dict[str, int] = field(default_factory=dict)


class _Stopwatch:
    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + now - self._last
        self._last = now


def rollups_rebuild_all() -> RebuildReport:
    """Recomputes incidents, every fact and every SLO's rollups from the read models, and moves
    the SLO consumer's cursor to the ledger head (holding its lock: no increment interleaves)."""
    started = timezone.now()
    watch = _Stopwatch()
    with transaction.atomic():
        cursor = consumer_cursor_locked()
        head = LedgerSeal.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        slos = list(Slo.objects.exclude(sli=SliKind.PROMQL))
        if connection.vendor == "postgresql":
            report = _rebuild_pg(slos, watch)
        else:
            report = _rebuild_portable(slos, watch)
        cursor.last_seq = max(head, cursor.last_seq)
        cursor.updated_at = timezone.now()
        cursor.save(update_fields=["last_seq", "updated_at"])
    watch.lap("commit")
    report.head_seq = cursor.last_seq
    report.seconds = (timezone.now() - started).total_seconds()
    report.phases = watch.phases
    return report


def _rebuild_portable(slos: list[Slo], watch: _Stopwatch) -> RebuildReport:
    incidents = incidents_rebuild()
    watch.lap("incidents")
    facts = facts_rebuild()
    watch.lap("facts")
    SloRollup.objects.filter(slo__in=slos).delete()
    rollups = sum(rollups_insert_one(slo) for slo in slos)
    watch.lap("rollups")
    changed = {"incidents": incidents, "facts": facts, "rollups": rollups}
    return RebuildReport(incidents, facts, len(slos), rollups, 0, 0.0, changed=changed)


@dataclass(frozen=True)
class _Derived:
    """A derived table as the rebuild sees it."""

    name: str
    table: str
    key: tuple[str, ...]
    columns: tuple[str, ...]  # key first, in the order the rebuild's SELECTs yield them
    stamp: str = ""  # a column set to the time of the rebuild on each row it writes
    scope: str = "true"  # the live rows the rebuild owns (SQL condition on alias l)
    # Checksummed comparison: the groups (SQL over the columns) and, per group, a count and a
    # checksum (aggregates over the rows) that any change to a row changes. None: compare by key.
    group: tuple[str, ...] = ()
    count: str = "count(*)"
    checksum: str = ""

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.key)


# A minute's two independent hashes, as small numbers so products and sums stay exact.
_H0 = "mod(timestamp_hash_extended(minute::timestamp, 0), 1000003)"
_H1 = "mod(timestamp_hash_extended(minute::timestamp, 1), 1000003)"
_DAY = "date_trunc('day', minute)"

INCIDENTS = _Derived(
    "incidents", "actions_incident", ("incident_id",), PG_INCIDENTS_COLUMNS, stamp="updated_at"
)
FACTS = _Derived(
    "facts",
    "slo_slifact",
    ("kind", "subject"),
    PG_FACTS_COLUMNS,
    group=("kind", _DAY),
    # One hash binds every column of a fact.
    checksum=(
        "sum(hashtextextended(subject || '|' || agent_version || '|' || coalesce(value::text, ''),"
        " timestamp_hash_extended(minute::timestamp, agent_id * 1000003 + team_id * 10007"
        " + counted::int * 7 + coalesce(good::int, 2))))"
    ),
)
ROLLUPS = _Derived(
    "rollups",
    "slo_slorollup",
    ("slo_id", "minute"),
    ("slo_id", "minute", "good", "total"),
    # PromQL SLOs' rollups come from Prometheus: not the rebuild's to touch.
    scope=f"l.slo_id IN (SELECT id FROM slo_slo WHERE sli <> '{SliKind.PROMQL}')",
    group=("slo_id", _DAY),
    # Linear in the counts, so the facts give it without grouping them by minute (below).
    count="sum(total)",
    checksum=f"sum({_H0} * total + {_H1} * good)",
)
# The same count and checksum from (slo_id, minute, good) rows, one per fact and SLO.
_ROLLUP_SUMS_PER_FACT = f"count(*), sum({_H0} + {_H1} * good::int)"


@dataclass(frozen=True)
class _Source:
    """What a derived table should hold: a SELECT of its columns (and its parameters)."""

    sql: str
    params: list[Any] = field(default_factory=list)
    # A SELECT of (group..., count, checksum) of those rows, when there is a cheaper way
    # than grouping `sql`'s rows.
    sums: tuple[str, list[Any]] | None = None


_INCIDENT_EVENTS = "rebuild_incident_events"


def _incidents_source() -> _Source:
    with connection.cursor() as cursor:
        # Staged first: CREATE TABLE AS may scan the event table with parallel workers.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_INCIDENT_EVENTS} ON COMMIT DROP AS"
            f" {PG_INCIDENT_EVENTS_SELECT}"
        )
        cursor.execute(f"ANALYZE {_INCIDENT_EVENTS}")
    return _Source(PG_INCIDENTS_SELECT.format(events=_INCIDENT_EVENTS))


def _facts_source() -> _Source:
    return _Source(" UNION ALL ".join(PG_FACTS_SELECTS))


def _rollups_source(slos: list[Slo]) -> _Source:
    grouped = rollups_select_pg(slos)
    per_fact = rollups_select_pg(slos, per_fact=True)
    if grouped is None or per_fact is None:
        # No SLO counting facts: no rollups of the rebuild's to keep.
        return _Source(f"SELECT {', '.join(ROLLUPS.columns)} FROM {ROLLUPS.table} WHERE false")
    sql, params = per_fact
    sums = (
        f"SELECT slo_id, {_DAY}, {_ROLLUP_SUMS_PER_FACT} FROM ({sql}) matched GROUP BY 1, 2",
        params,
    )
    return _Source(grouped[0], grouped[1], sums=sums)


def _rebuild_pg(slos: list[Slo], watch: _Stopwatch) -> RebuildReport:
    now = timezone.now()
    with connection.cursor() as cursor:
        # The rebuild sorts, hashes and joins millions of rows once: in memory, not on disk.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        # JIT-compiling these one-off statements cost more than running them (0.7 s of 1.7 s
        # for the recall facts of 1 M events).
        cursor.execute("SET LOCAL jit = off")
        # The default cost of handing a row from a parallel worker to the leader keeps the
        # planner from scanning the event table in parallel for the alerts and outcomes; a
        # one-off bulk job may use every core.
        cursor.execute("SET LOCAL parallel_tuple_cost = 0.01")
    changed: dict[str, int] = {}
    counts: dict[str, int] = {}
    sources: dict[str, Callable[[], _Source]] = {
        "incidents": _incidents_source,
        "facts": _facts_source,
        "rollups": lambda: _rollups_source(slos),
    }
    # In dependency order: facts read the incidents, rollups read the facts.
    for derived in (INCIDENTS, FACTS, ROLLUPS):
        with connection.cursor() as cursor:
            # The planner cannot see how many facts each SLO matches (it guesses a handful of
            # millions), so it would sort them to group them; hashing is twice as fast.
            cursor.execute(f"SET LOCAL enable_sort = {'off' if derived is ROLLUPS else 'on'}")
        counts[derived.name], changed[derived.name] = _refresh(
            derived, sources[derived.name](), now
        )
        watch.lap(derived.name)
    with connection.cursor() as cursor:
        # Dropped now, not at commit: a caller's outer transaction may rebuild again.
        cursor.execute(f"DROP TABLE {_INCIDENT_EVENTS}")
    return RebuildReport(
        counts["incidents"],
        counts["facts"],
        len(slos),
        counts["rollups"],
        0,
        0.0,
        changed=changed,
    )


def _refresh(derived: _Derived, source: _Source, now: datetime) -> tuple[int, int]:
    """Brings one derived table to what `source` computes; returns (rows now, rows written)."""
    columns = ", ".join(derived.columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {derived.table} l WHERE {derived.scope})")
        populated = cursor.fetchone()[0]
    if not populated:
        return _fill(derived, source, now)

    rows_before = None
    only = "true"  # the groups to compare row by row: all, unless checksums narrow them
    params: list[Any] = list(source.params)
    if derived.group:
        rows_before, groups = _groups_differing(derived, source)
        if not groups:
            return rows_before, 0
        group = ", ".join(derived.group)
        only = f"({group}) IN (SELECT * FROM rebuild_groups)"

    staged = f"rebuild_{derived.table}"
    diff = f"rebuild_diff_{derived.table}"
    same_key = " AND ".join(f"s.{k} = l.{k}" for k in derived.key)
    live_values = ", ".join(f"l.{c}" for c in derived.values)
    staged_values = ", ".join(f"s.{c}" for c in derived.values)
    assignments = ", ".join(f"{c} = d.{c}" for c in derived.values)
    stamp_assignment = f", {derived.stamp} = %s" if derived.stamp else ""
    stamp_params = [now] if derived.stamp else None
    with connection.cursor() as cursor:
        # CREATE TABLE AS, unlike INSERT … SELECT, may run its query in parallel workers.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {staged} ON COMMIT DROP AS"
            f" SELECT * FROM ({source.sql}) AS q({columns}) WHERE {only}",
            params or None,
        )
        staged_rows = int(cursor.rowcount)
        cursor.execute(f"ANALYZE {staged}")  # the join below is planned from it
        # One join of the recomputed rows with the live ones finds every difference; the
        # writes below then touch only those rows, by primary key.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {diff} ON COMMIT DROP AS"
            f" SELECT l.id AS live_id, s.{derived.key[0]} IS NULL AS gone, s.*"
            f" FROM {staged} s FULL JOIN"
            f" (SELECT * FROM {derived.table} l WHERE {derived.scope} AND {only}) l"
            f" ON {same_key}"
            f" WHERE l.id IS NULL OR s.{derived.key[0]} IS NULL"
            f" OR ({live_values}) IS DISTINCT FROM ({staged_values})"
        )
        changes = int(cursor.rowcount)
        deleted = inserted = 0
        if changes:
            cursor.execute(
                f"DELETE FROM {derived.table} WHERE id IN (SELECT live_id FROM {diff} WHERE gone)"
            )
            deleted = int(cursor.rowcount)
            cursor.execute(
                f"UPDATE {derived.table} l SET {assignments}{stamp_assignment} FROM {diff} d"
                " WHERE l.id = d.live_id AND NOT d.gone",
                stamp_params,
            )
            inserted = _insert_rows(
                cursor, derived, f"SELECT {columns} FROM {diff} WHERE live_id IS NULL", [], now
            )
        cursor.execute(f"DROP TABLE {staged}, {diff}")
        if derived.group:
            cursor.execute("DROP TABLE rebuild_groups")
        rows = staged_rows if rows_before is None else rows_before - deleted + inserted
        if changes > rows // 10:
            # Fresh statistics after a large change: the consumer's plans depend on them.
            cursor.execute(f"ANALYZE {derived.table}")
    return rows, changes


def _groups_differing(derived: _Derived, source: _Source) -> tuple[int, int]:
    """Counts and checksums per group of what is stored and what was recomputed; the groups
    that differ go into the temporary table rebuild_groups. Returns (rows stored, groups)."""
    columns = ", ".join(derived.columns)
    group = ", ".join(derived.group)
    numbers = ", ".join(str(i + 1) for i in range(len(derived.group)))
    names = [f"g{i}" for i in range(len(derived.group))]
    if source.sums is not None:
        new_sql, new_params = source.sums
    else:
        new_sql = (
            f"SELECT {group}, {derived.count}, {derived.checksum}"
            f" FROM ({source.sql}) AS q({columns}) GROUP BY {numbers}"
        )
        new_params = source.params
    same_group = " AND ".join(f"n.{g} = o.{g}" for g in names)
    either = ", ".join(f"coalesce(n.{g}, o.{g}) AS {g}" for g in names)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE rebuild_sums ({', '.join(names)}, n, c) ON COMMIT DROP AS"
            f" {new_sql}",
            new_params or None,
        )
        cursor.execute(
            f"CREATE TEMPORARY TABLE rebuild_sums_live ({', '.join(names)}, n, c, r)"
            f" ON COMMIT DROP AS SELECT {group}, {derived.count}, {derived.checksum}, count(*)"
            f" FROM {derived.table} l WHERE {derived.scope} GROUP BY {numbers}"
        )
        cursor.execute(
            f"CREATE TEMPORARY TABLE rebuild_groups ON COMMIT DROP AS SELECT {either}"
            f" FROM rebuild_sums n FULL JOIN rebuild_sums_live o ON {same_group}"
            " WHERE (n.n, n.c) IS DISTINCT FROM (o.n, o.c)"
        )
        groups = int(cursor.rowcount)
        cursor.execute("SELECT coalesce(sum(r), 0) FROM rebuild_sums_live")
        stored = int(cursor.fetchone()[0])
        cursor.execute("DROP TABLE rebuild_sums, rebuild_sums_live")
        if not groups:
            cursor.execute("DROP TABLE rebuild_groups")
    return stored, groups


def _fill(derived: _Derived, source: _Source, now: datetime) -> tuple[int, int]:
    """Fills an empty derived table in bulk, its keys suspended; returns (rows, rows).

    The rows are computed into a staged table first: CREATE TABLE AS may run the query in
    parallel workers, INSERT … SELECT never does, and copying the staged rows costs little."""
    columns = ", ".join(derived.columns)
    staged = f"rebuild_{derived.table}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {staged} ON COMMIT DROP AS"
            f" SELECT * FROM ({source.sql}) AS q({columns})",
            list(source.params) or None,
        )
    with table_keys_suspended(derived.table), connection.cursor() as cursor:
        rows = _insert_rows(cursor, derived, f"SELECT * FROM {staged}", [], now)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {staged}")
        cursor.execute(f"ANALYZE {derived.table}")
    return rows, rows


def _insert_rows(
    cursor: Any, derived: _Derived, rows_sql: str, params: list[Any], now: datetime
) -> int:
    """Inserts the rows of `rows_sql` (the derived table's columns, in order) into the live
    table, stamped with the rebuild's time where it keeps one; returns how many."""
    columns = ", ".join(derived.columns)
    if derived.stamp:
        sql = f"INSERT INTO {derived.table} ({columns}, {derived.stamp}) SELECT q.*, %s"
        params = [*params, now]
    else:
        sql = f"INSERT INTO {derived.table} ({columns}) SELECT q.*"
    cursor.execute(f"{sql} FROM ({rows_sql}) q", params or None)
    return int(cursor.rowcount)
