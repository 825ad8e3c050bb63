# The SQL built here is made of constants and column names only; every value is a parameter.
# ruff: noqa: S608
"""SLI facts: what each subject (an action, or an incident for recall) contributes to each
built-in SLI, computed from the Action and Incident read models (DESIGN.md "SLOs").

One function computes a subject's facts (`action_facts`, `recall_fact`); the incremental
consumer and the full rebuild both call it, so they cannot disagree. Per-SLO parameters (the
time-to-propose and cost thresholds, the rollback window) are applied at rollup time, so a
fact stores the measured value in seconds, USD or Wh, never a verdict against one SLO's bar.

| kind              | counted when                          | value / good                  | bucket      |
|-------------------|---------------------------------------|-------------------------------|-------------|
| time_to_propose   | proposed, and an alert in the action  | seconds from the earlier of   | proposal    |
|                   | or its incident                       | the two first alerts          |             |
| acceptance        | decision approved/rejected/denied     | good = approved               | decision    |
| rollback          | execution succeeded                   | seconds to the rollback, or   | execution   |
|                   |                                       | none (good unless ≤ window;   | (succeeded) |
|                   |                                       | `good` by the default 24 h)   |             |
| accuracy          | a verdict, else an outcome            | good = verdict, else resolved | verdict,    |
|                   |                                       |                               | else outc.  |
| recall            | incident's latest outcome resolved    | good = an action in it has    | outcome     |
|                   |                                       | accuracy good                 |             |
| cost / energy     | the action's cost / energy is known   | USD / Wh                      | proposal    |
"""

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection, models
from django.db.models import Exists, F, OuterRef, Q, Subquery

from apps.actions.models import Action, Incident
from apps.slo.costs import ActionCost, action_costs
from apps.slo.models import SliFact, SliKind

# The kinds whose subject is an action (recall's is an incident; promql has no facts).
ACTION_KINDS: tuple[str, ...] = (
    SliKind.TIME_TO_PROPOSE,
    SliKind.ACCEPTANCE,
    SliKind.ROLLBACK,
    SliKind.ACCURACY,
    SliKind.COST_PER_ACTION,
    SliKind.ENERGY_PER_ACTION,
)
ACCEPTANCE_DECISIONS = frozenset({"approved", "rejected", "denied"})
MICRO = Decimal("0.000001")
DEFAULT_ROLLBACK_SECONDS = Decimal(24 * 3600)  # Slo.rollback_window's default


@dataclass(frozen=True)
class Fact:
    """A counted fact: what one subject contributes to one SLI kind."""

    kind: str
    subject: str
    agent_id: int
    team_id: int
    agent_version: str
    minute: datetime
    good: bool | None
    value: Decimal | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.subject)


def minute_of(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def seconds_between(later: datetime, earlier: datetime) -> Decimal:
    """Exact seconds (to the microsecond) as the Decimal the fact's value column stores."""
    return Decimal((later - earlier) // timedelta(microseconds=1)) * MICRO


# What the facts read of an action, with its agent's team and its incident's first alert.
ACTION_COLUMNS = (
    "action_id",
    "agent_id",
    "team_id",
    "agent_version",
    "incident_id",
    "proposed_at",
    "first_alert_at",
    "incident_first_alert_at",
    "decision",
    "decided_at",
    "execution_status",
    "execution_finished_at",
    "rolled_back_at",
    "verdict_correct",
    "verdict_at",
    "outcome_resolved",
    "outcome_at",
)


@dataclass(frozen=True)
class ActionRow:
    action_id: str
    agent_id: int
    team_id: int
    agent_version: str
    incident_id: str | None
    proposed_at: datetime | None
    first_alert_at: datetime | None
    incident_first_alert_at: datetime | None
    decision: str
    decided_at: datetime | None
    execution_status: str
    execution_finished_at: datetime | None
    rolled_back_at: datetime | None
    verdict_correct: bool | None
    verdict_at: datetime | None
    outcome_resolved: bool | None
    outcome_at: datetime | None


def action_rows(where: Q) -> Iterator[ActionRow]:
    """The actions matching `where`, with what their facts need: one query."""
    first = Incident.objects.filter(incident_id=OuterRef("incident_id")).values("first_alert_at")
    qs = (
        Action.objects.filter(where)
        .annotate(team_id=F("agent__team_id"), incident_first_alert_at=Subquery(first[:1]))
        .order_by()
        .values_list(*ACTION_COLUMNS)
    )
    for row in qs.iterator(chunk_size=20000):
        yield ActionRow(*row)


def accuracy_good(verdict_correct: bool | None, outcome_resolved: bool | None) -> bool | None:
    """A person's verdict, else the outcome event; None when neither exists."""
    return verdict_correct if verdict_correct is not None else outcome_resolved


# The same rule as a filter on actions (recall asks whether an incident has such an action).
ACCURACY_GOOD = Q(verdict_correct=True) | Q(verdict_correct__isnull=True, outcome_resolved=True)


def action_facts(row: ActionRow, cost: ActionCost | None = None) -> list[Fact]:
    """The counted facts of one action (kinds it is not counted in are absent)."""
    facts: list[Fact] = []

    def add(kind: str, at: datetime, good: bool | None, value: Decimal | None = None) -> None:
        facts.append(
            Fact(
                kind=kind,
                subject=row.action_id,
                agent_id=row.agent_id,
                team_id=row.team_id,
                agent_version=row.agent_version or "",
                minute=minute_of(at),
                good=good,
                value=value,
            )
        )

    alerts = [t for t in (row.first_alert_at, row.incident_first_alert_at) if t is not None]
    if row.proposed_at is not None and alerts:
        # May be negative when the alert is stamped after the proposal (clock skew); it then
        # meets any threshold, which is what the agent's own timestamps claim.
        add(
            SliKind.TIME_TO_PROPOSE,
            row.proposed_at,
            None,
            seconds_between(row.proposed_at, min(alerts)),
        )
    if row.decision in ACCEPTANCE_DECISIONS and row.decided_at is not None:
        add(SliKind.ACCEPTANCE, row.decided_at, row.decision == "approved")
    if row.execution_status == "succeeded" and row.execution_finished_at is not None:
        to_rollback = (
            seconds_between(row.rolled_back_at, row.execution_finished_at)
            if row.rolled_back_at is not None
            else None
        )
        # `good` by the default window, for readers listing bad facts; SLOs apply their own
        # rollback window to `value` (apps.slo.rollups.slo_fact_good).
        kept = to_rollback is None or to_rollback > DEFAULT_ROLLBACK_SECONDS
        add(SliKind.ROLLBACK, row.execution_finished_at, kept, to_rollback)
    correct = accuracy_good(row.verdict_correct, row.outcome_resolved)
    if correct is not None:
        at = row.verdict_at if row.verdict_correct is not None else row.outcome_at
        if at is not None:
            add(SliKind.ACCURACY, at, correct)
    if cost is not None and row.proposed_at is not None:
        if cost.cost_usd is not None:
            add(SliKind.COST_PER_ACTION, row.proposed_at, None, _micro(cost.cost_usd))
        if cost.energy_wh is not None:
            add(SliKind.ENERGY_PER_ACTION, row.proposed_at, None, _micro(cost.energy_wh))
    return facts


def _micro(value: Decimal) -> Decimal:
    # Half up, as PostgreSQL's round() does for these non-negative sums (the rebuild's SQL).
    return value.quantize(MICRO, rounding=ROUND_HALF_UP)


RECALL_COLUMNS = ("incident_id", "agent_id", "team_id", "agent_version", "outcome_at", "any_good")


def recall_rows(where: Q) -> Iterator[tuple[Any, ...]]:
    """Resolved incidents matching `where`, with their agent's team, the version of their first
    alert and whether any of their actions is judged correct: one query."""
    correct = Action.objects.filter(ACCURACY_GOOD, incident_id=OuterRef("incident_id"))
    qs = (
        Incident.objects.filter(where, resolved=True, outcome_at__isnull=False)
        .annotate(
            team_id=F("agent__team_id"),
            any_good=Exists(correct),
        )
        .order_by()
        .values_list(*RECALL_COLUMNS)
    )
    yield from qs.iterator(chunk_size=20000)


def recall_fact(row: Sequence[Any]) -> Fact:
    incident_id, agent_id, team_id, agent_version, outcome_at, any_good = row
    return Fact(
        kind=SliKind.RECALL,
        subject=incident_id,
        agent_id=agent_id,
        team_id=team_id,
        agent_version=agent_version or "",
        minute=minute_of(outcome_at),
        good=bool(any_good),
        value=None,
    )


def facts_compute(
    rows: Iterable[ActionRow], costs: Mapping[str, ActionCost] | None = None
) -> Iterator[Fact]:
    costs = costs or {}
    for row in rows:
        yield from action_facts(row, costs.get(row.action_id))


def fact_from_row(row: SliFact) -> Fact:
    return Fact(
        kind=row.kind,
        subject=row.subject,
        agent_id=row.agent_id,
        team_id=row.team_id,
        agent_version=row.agent_version,
        minute=row.minute,
        good=row.good,
        value=None if row.value is None else Decimal(row.value).quantize(MICRO),
    )


def fact_row(fact: Fact, *, counted: bool = True) -> SliFact:
    return SliFact(
        kind=fact.kind,
        subject=fact.subject,
        agent_id=fact.agent_id,
        team_id=fact.team_id,
        agent_version=fact.agent_version,
        minute=fact.minute,
        counted=counted,
        good=fact.good,
        value=fact.value,
    )


def facts_rebuild() -> int:
    """Recomputes every fact from the read models with `action_facts` and `recall_fact` (the
    caller holds the SLO cursor lock and rebuilt the incidents first); returns how many facts
    were written. PostgreSQL runs PG_FACTS_SELECTS instead (apps.slo.rebuild), which state the
    same rules in SQL (the tests hold the two to the same numbers)."""
    table_clear(SliFact)
    written = 0
    chunk: list[SliFact] = []
    rows = action_rows(Q())
    pending: list[ActionRow] = []

    def flush_actions() -> None:
        nonlocal written
        costs = action_costs([r.action_id for r in pending])
        for fact in facts_compute(pending, costs):
            chunk.append(fact_row(fact))
        pending.clear()

    for row in rows:
        pending.append(row)
        if len(pending) >= 20000:
            flush_actions()
            written += rows_copy(SliFact, chunk)
            chunk.clear()
    flush_actions()
    for recall in recall_rows(Q()):
        chunk.append(fact_row(recall_fact(recall)))
        if len(chunk) >= 50000:
            written += rows_copy(SliFact, chunk)
            chunk.clear()
    written += rows_copy(SliFact, chunk)
    return written


def table_clear(model: type[models.Model]) -> None:
    """Empties a derived table (TRUNCATE on PostgreSQL: no dead rows to vacuum)."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # TRUNCATE refuses a table with pending deferred FK checks (rows inserted earlier in
            # this transaction): run them now, then defer again as Django's constraints are.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {table}")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        else:
            cursor.execute(f"DELETE FROM {table}")


def rows_copy(model: type[models.Model], objs: Sequence[models.Model]) -> int:
    """Inserts many new rows: COPY on PostgreSQL, else batches."""
    if not objs:
        return 0
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=2000)  # type: ignore[attr-defined]
        return len(objs)
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)  # type: ignore[arg-type]
    connection.ensure_connection()
    sql = f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN"
    with connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
        for obj in objs:
            copy.write_row([getattr(obj, f.attname) for f in fields])
    return len(objs)


def _minute(column: str) -> str:
    """A timestamptz truncated to its UTC minute, whatever the session's time zone."""
    return f"(date_trunc('minute', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


def _seconds(later: str, earlier: str) -> str:
    # numeric since PostgreSQL 14: exact to the microsecond, like seconds_between().
    return f"EXTRACT(EPOCH FROM {later} - {earlier})::numeric(18, 6)"


# Each SELECT yields the columns of PG_FACTS_COLUMNS, in that order.
PG_FACTS_COLUMNS = (
    "kind",
    "subject",
    "agent_id",
    "team_id",
    "agent_version",
    "minute",
    "counted",
    "good",
    "value",
)
_FIRST_ALERT = "LEAST(a.first_alert_at, i.first_alert_at)"  # LEAST skips NULLs
_ACCURACY_AT = "CASE WHEN a.verdict_correct IS NOT NULL THEN a.verdict_at ELSE a.outcome_at END"
PG_FACTS_SELECTS = (
    # The four per-action kinds in one pass over the actions (the second-largest table): each
    # action yields a row per kind, and the kinds it is not counted in have no minute.
    "SELECT f.kind, a.action_id, a.agent_id, ag.team_id, a.agent_version, f.minute, "
    "true, f.good, f.value"
    " FROM actions_action a JOIN fleet_agent ag ON ag.id = a.agent_id"
    " LEFT JOIN actions_incident i ON i.incident_id = a.incident_id"
    " CROSS JOIN LATERAL (VALUES"
    # time to propose
    " ('time_to_propose', CASE WHEN a.proposed_at IS NOT NULL"
    f" AND {_FIRST_ALERT} IS NOT NULL THEN {_minute('a.proposed_at')} END,"
    f" NULL::boolean, {_seconds('a.proposed_at', _FIRST_ALERT)}),"
    # acceptance
    " ('acceptance', CASE WHEN a.decision IN ('approved', 'rejected', 'denied')"
    f" AND a.decided_at IS NOT NULL THEN {_minute('a.decided_at')} END,"
    " a.decision = 'approved', NULL),"
    # rollback
    " ('rollback', CASE WHEN a.execution_status = 'succeeded'"
    f" AND a.execution_finished_at IS NOT NULL THEN {_minute('a.execution_finished_at')} END,"
    f" a.rolled_back_at IS NULL OR {_seconds('a.rolled_back_at', 'a.execution_finished_at')}"
    f" > {DEFAULT_ROLLBACK_SECONDS}, {_seconds('a.rolled_back_at', 'a.execution_finished_at')}),"
    # accuracy: a person's verdict, else the outcome
    " ('accuracy', CASE WHEN (a.verdict_correct IS NOT NULL AND a.verdict_at IS NOT NULL)"
    " OR (a.verdict_correct IS NULL AND a.outcome_resolved IS NOT NULL"
    f" AND a.outcome_at IS NOT NULL) THEN {_minute(_ACCURACY_AT)} END,"
    " COALESCE(a.verdict_correct, a.outcome_resolved), NULL)"
    ") AS f(kind, minute, good, value)"
    " WHERE f.minute IS NOT NULL",
    # cost and energy per action: the action's LLM calls (apps.costs); its cost is unknown
    # while one of them is unpriced (apps.slo.costs.action_costs states the same rule)
    "SELECT k.kind, a.action_id, a.agent_id, ag.team_id, a.agent_version, "
    f"{_minute('a.proposed_at')}, true, NULL::boolean, k.value"
    " FROM actions_action a JOIN fleet_agent ag ON ag.id = a.agent_id"
    " JOIN (SELECT action_id, sum(cost_usd) AS cost, sum(energy_wh) AS wh,"
    " count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced"
    " FROM costs_llmusage WHERE action_id IS NOT NULL GROUP BY action_id) u"
    " ON u.action_id = a.action_id"
    " CROSS JOIN LATERAL (VALUES"
    " ('cost_per_action', CASE WHEN u.unpriced = 0 THEN round(u.cost, 6) END),"
    " ('energy_per_action', round(u.wh, 6))) AS k(kind, value)"
    " WHERE a.proposed_at IS NOT NULL AND k.value IS NOT NULL",
    # recall
    "SELECT 'recall', i.incident_id, i.agent_id, ag.team_id, i.agent_version, "
    f"{_minute('i.outcome_at')}, true, EXISTS (SELECT 1 FROM actions_action a"
    " WHERE a.incident_id = i.incident_id AND (a.verdict_correct"
    " OR (a.verdict_correct IS NULL AND a.outcome_resolved))), NULL"
    " FROM actions_incident i JOIN fleet_agent ag ON ag.id = i.agent_id"
    " WHERE i.resolved AND i.outcome_at IS NOT NULL",
)


@contextmanager
def table_keys_suspended(*tables: str) -> Iterator[None]:
    """Drops the tables' secondary indexes, unique and foreign keys while a rebuild refills
    them, then builds them back.

    Building an index sorts once and adding a foreign key checks every row in one join;
    keeping them updates each index and checks each row one by one (and locks the row it
    points to) — minutes for millions of rows. PostgreSQL's "Populating a Database" advice;
    the caller's transaction makes it all-or-nothing (readers of these tables wait for it)."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        # ALTER TABLE refuses a table with pending deferred checks: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE contype IN ('f', 'u') AND conrelid = ANY(%s::regclass[])"
            " ORDER BY contype = 'f' DESC",
            [list(tables)],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
            " WHERE indrelid = ANY(%s::regclass[]) AND NOT indisprimary"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = indexrelid)",
            [list(tables)],
        )
        indexes = cursor.fetchall()
        for table, name, _ in constraints:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {connection.ops.quote_name(name)}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
    yield
    with connection.cursor() as cursor:
        for _, definition in indexes:
            cursor.execute(definition)
        for table, name, definition in reversed(constraints):  # unique keys, then foreign keys
            cursor.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {connection.ops.quote_name(name)} {definition}"
            )
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
