"""Allocation: every line item's cost given to teams and agents by the rules, exactly.

The rules are tried in order; the first that matches a line item decides all of its cost. A
tag rule gives it whole to one agent (and its team) or one team; a shared rule splits it
across teams, evenly or in proportion to each team's actions or LLM tokens in the line item's
charge period. What no rule claims is one unallocated row. Shares are whole multiples of the
storage unit (1e-12), rounded by largest remainder, so they add up to the line item exactly.

Allocation runs in the transaction that stores a bill (`allocate_import`) and again, for a
charge-period range, when the rules change (`allocate_range`). Both take one advisory lock,
so an import and a recompute never allocate the same rows at once.
"""

# ruff: noqa: S608 - table names come from the models, WHERE clauses are constants here.

import fnmatch
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, Sum

from apps.billing.models import (
    MONEY_PLACES,
    AllocationMethod,
    AllocationRule,
    CostAllocation,
    CostLineItem,
    RuleKind,
    RuleTarget,
    SplitBasis,
)
from apps.billing.normalise import Line

UNIT_EXPONENT = -MONEY_PLACES
FETCH_ROWS = 5000
LOCK_KEY = "billing-allocation"
SPLIT_METHOD = {
    SplitBasis.EVEN: AllocationMethod.SHARED_EVEN,
    SplitBasis.ACTIONS: AllocationMethod.SHARED_ACTIONS,
    SplitBasis.TOKENS: AllocationMethod.SHARED_TOKENS,
}


def split_exact(amount: Decimal, weights: Sequence[int]) -> list[Decimal]:
    """`amount` split in proportion to `weights` (positive integers) in whole storage units;
    the leftover units go to the largest remainders (the earlier share on a tie)."""
    units = int(amount.scaleb(-UNIT_EXPONENT).to_integral_value())
    sign = -1 if units < 0 else 1
    units = abs(units)
    total = sum(weights)
    base = [units * w // total for w in weights]
    remainders = [units * w % total for w in weights]
    leftover = units - sum(base)
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:leftover]:
        base[i] += 1
    return [Decimal(sign * b).scaleb(UNIT_EXPONENT) for b in base]


@dataclass
class CompiledRule:
    """A rule ready to match: lookups resolved, patterns compiled."""

    name: str
    kind: str
    tag_key: str = ""
    target: str = ""
    value_map: dict[str, str] = field(default_factory=dict)
    provider: str = ""
    service: re.Pattern[str] | None = None
    tag_value: str = ""
    resource: re.Pattern[str] | None = None
    split: str = ""
    team_ids: list[int] = field(default_factory=list)  # in slug order

    @property
    def reads_resource(self) -> bool:
        return self.resource is not None


@dataclass(frozen=True)
class Owner:
    """A tag rule's decision: the whole line item to one team (and agent)."""

    rule: CompiledRule
    team_id: int
    agent_id: int | None


class Directory:
    """Agents and teams by slug, read once per allocation."""

    def __init__(self) -> None:
        from apps.fleet.models import Agent, Team

        self.teams: dict[str, int] = dict(Team.objects.values_list("slug", "id"))
        self.agents: dict[str, tuple[int, int]] = {
            slug: (team_id, pk)
            for slug, pk, team_id in Agent.objects.values_list("slug", "pk", "team_id")
        }
        self.team_order: list[int] = [self.teams[slug] for slug in sorted(self.teams)]


def compile_rule(
    rule: AllocationRule, directory: Directory, team_slugs: Iterable[str]
) -> CompiledRule:
    compiled = CompiledRule(name=rule.name, kind=rule.kind)
    if rule.kind == RuleKind.TAG:
        compiled.tag_key = rule.tag_key.lower()
        compiled.target = rule.target
        compiled.value_map = {
            str(k).strip().lower(): str(v) for k, v in (rule.value_map or {}).items()
        }
        return compiled
    compiled.provider = rule.match_provider.strip().lower()
    if rule.match_service:
        compiled.service = re.compile(fnmatch.translate(rule.match_service.strip()), re.IGNORECASE)
    compiled.tag_key = rule.match_tag_key.lower()
    compiled.tag_value = rule.match_tag_value.strip().lower()
    if rule.match_resource:
        compiled.resource = re.compile(rule.match_resource)
    compiled.split = rule.split or SplitBasis.EVEN
    chosen = {directory.teams[s] for s in team_slugs if s in directory.teams}
    compiled.team_ids = [t for t in directory.team_order if not chosen or t in chosen]
    return compiled


def rules_compile(
    rules: Iterable[AllocationRule] | None = None,
) -> tuple[list[CompiledRule], Directory]:
    """The enabled rules in order (or `rules`, e.g. a preview's unsaved set), compiled."""
    directory = Directory()
    if rules is None:
        rules = (
            AllocationRule.objects.filter(enabled=True)
            .prefetch_related("teams")
            .order_by("position", "id")
        )
    compiled = []
    for rule in rules:
        if not rule.enabled:
            continue
        slugs = getattr(rule, "preview_team_slugs", None)
        if slugs is None:
            slugs = [t.slug for t in rule.teams.all()] if rule.pk else []
        compiled.append(compile_rule(rule, directory, slugs))
    return compiled, directory


class Allocator:
    """Decides and splits line items; decisions are cached per distinct (provider, service,
    tags, resource when a rule reads it), so a bill's millions of rows cost a few thousand
    rule evaluations. Weights are cached per charge period."""

    def __init__(self, rules: list[CompiledRule], directory: Directory) -> None:
        self.rules = rules
        self.directory = directory
        self.reads_resource = any(r.reads_resource for r in rules)
        self.decisions: dict[tuple[str, str, str, str], Owner | CompiledRule | None] = {}
        self.weights: dict[tuple[str, datetime, datetime], dict[int, int]] = {}
        self.owners: dict[
            tuple[str, str, int, str], tuple[dict[str, str], tuple[int | None, int | None]]
        ] = {}

    def decide(
        self, provider: str, service: str, tags_text: str, resource: str
    ) -> Owner | CompiledRule | None:
        key = (provider, service, tags_text, resource if self.reads_resource else "")
        try:
            return self.decisions[key]
        except KeyError:
            pass
        raw = json.loads(tags_text) if tags_text else {}
        tags = {str(k).lower(): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        decision = self._first_match(provider, service, tags, resource)
        if len(self.decisions) > 50_000:
            self.decisions.clear()
        self.decisions[key] = decision
        return decision

    def _first_match(
        self, provider: str, service: str, tags: dict[str, str], resource: str
    ) -> Owner | CompiledRule | None:
        for rule in self.rules:
            if rule.kind == RuleKind.TAG:
                owner = self._owner(rule, tags)
                if owner is not None:
                    return owner
                continue
            if rule.provider and provider.strip().lower() != rule.provider:
                continue
            if rule.service is not None and not rule.service.match(service.strip()):
                continue
            if rule.tag_key:
                value = tags.get(rule.tag_key)
                if value is None or (rule.tag_value and value.strip().lower() != rule.tag_value):
                    continue
            if rule.resource is not None and not rule.resource.search(resource):
                continue
            if rule.team_ids:
                return rule
        return None

    def _owner(self, rule: CompiledRule, tags: dict[str, str]) -> Owner | None:
        value = tags.get(rule.tag_key)
        if value is None or not value.strip():
            return None
        value = value.strip().lower()
        slug = rule.value_map.get(value, "" if rule.value_map else value)
        if rule.target == RuleTarget.AGENT:
            found = self.directory.agents.get(slug)
            return Owner(rule, found[0], found[1]) if found else None
        team_id = self.directory.teams.get(slug)
        return Owner(rule, team_id, None) if team_id is not None else None

    def shares(
        self, rule: CompiledRule, start: datetime, end: datetime
    ) -> tuple[str, list[tuple[int, int]]]:
        """(method, [(team id, weight)]) for a shared rule in one charge period. No activity
        in the period: split evenly rather than leave the cost unallocated."""
        if rule.split != SplitBasis.EVEN:
            weights = self._period_weights(rule.split, start, end)
            chosen = [(t, weights.get(t, 0)) for t in rule.team_ids]
            chosen = [(t, w) for t, w in chosen if w > 0]
            if chosen:
                return SPLIT_METHOD[SplitBasis(rule.split)], chosen
        return AllocationMethod.SHARED_EVEN, [(t, 1) for t in rule.team_ids]

    def _period_weights(self, basis: str, start: datetime, end: datetime) -> dict[int, int]:
        key = (basis, start, end)
        cached = self.weights.get(key)
        if cached is not None:
            return cached
        end = max(end, start + timedelta(seconds=1))
        rows: Iterable[tuple[Any, Any]]
        if basis == SplitBasis.ACTIONS:
            from apps.actions.models import Action

            rows = (
                Action.objects.filter(proposed_at__gte=start, proposed_at__lt=end)
                .values("agent__team_id")
                .annotate(n=Count("id"))
                .values_list("agent__team_id", "n")
            )
        else:
            from apps.costs.models import LlmUsage

            rows = (
                LlmUsage.objects.filter(ts__gte=start, ts__lt=end, team_id__isnull=False)
                .values("team_id")
                .annotate(
                    n=Sum(
                        F("input_tokens")
                        + F("output_tokens")
                        + F("cache_write_5m_tokens")
                        + F("cache_write_1h_tokens")
                        + F("cache_read_tokens")
                    )
                )
                .values_list("team_id", "n")
            )
        weights = {team_id: int(n or 0) for team_id, n in rows if team_id is not None}
        self.weights[key] = weights
        return weights

    def owner_ids(self, line: Line) -> tuple[int | None, int | None]:
        """The team and agent a tag rule gives a normalised line to, (None, None) if shared or
        unallocated. Cached by the tags dict's identity: normalisers reuse one dict per
        distinct tags cell, so a bill's rows hit the cache."""
        key = (
            line.provider,
            line.service_name,
            id(line.tags),
            line.resource_id if self.reads_resource else "",
        )
        cached = self.owners.get(key)
        if cached is not None and cached[0] is line.tags:
            return cached[1]
        tags_text = json.dumps(line.tags, ensure_ascii=False, sort_keys=True)
        decision = self.decide(line.provider, line.service_name, tags_text, line.resource_id)
        owner = (
            (decision.team_id, decision.agent_id) if isinstance(decision, Owner) else (None, None)
        )
        if len(self.owners) > 100_000:
            self.owners.clear()
        # The dict is kept in the value, so its id cannot be reused while cached.
        self.owners[key] = (line.tags, owner)
        return owner

    def owner_text(self, line: Line) -> str:
        """owner_ids as the two COPY columns."""
        team_id, agent_id = self.owner_ids(line)
        if team_id is None:
            return NULL_PAIR
        return f"{team_id}\t{NULL if agent_id is None else agent_id}"

    # `line`: (id, billed, effective, currency, charge start, charge end, provider, service)
    def whole(self, line: tuple[Any, ...], owner: Owner | None) -> tuple[Any, ...]:
        pk, billed, effective, currency, start, end, provider, service = line
        tail = (currency, start, end, provider, service)
        if owner is None:
            return (pk, None, None, AllocationMethod.UNALLOCATED, "", billed, effective, *tail)
        return (
            pk,
            owner.team_id,
            owner.agent_id,
            AllocationMethod.TAG,
            owner.rule.name,
            billed,
            effective,
            *tail,
        )

    def split(self, rule: CompiledRule, line: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        pk, billed, effective, currency, start, end, provider, service = line
        method, weighted = self.shares(rule, _as_time(start), _as_time(end))
        weights = [w for _, w in weighted]
        billed_parts = split_exact(Decimal(billed), weights)
        effective_parts = split_exact(Decimal(effective), weights)
        return [
            (pk, team_id, None, method, rule.name, b, e, currency, start, end, provider, service)
            for (team_id, _), b, e in zip(weighted, billed_parts, effective_parts, strict=True)
        ]


def _as_time(value: Any) -> datetime:
    """A timestamp read by raw SQL: aware from PostgreSQL, text or naive UTC from SQLite."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def db_time(value: datetime) -> Any:
    """A timestamp as a raw SQL parameter, in the form the database stores (text on SQLite)."""
    return connection.ops.adapt_datetimefield_value(value)


LINE_TABLE = CostLineItem._meta.db_table
ALLOC_TABLE = CostAllocation._meta.db_table
ALLOC_COLUMNS = (
    "line_item_id",
    "team_id",
    "agent_id",
    "method",
    "rule_name",
    "billed_cost",
    "effective_cost",
    "billing_currency",
    "charge_period_start",
    "charge_period_end",
    "provider",
    "service_name",
)


@dataclass
class AllocationCount:
    line_items: int = 0
    allocations: int = 0


def allocation_lock(*, shared: bool) -> None:
    """Imports hold it shared (they run side by side), a recompute exclusively: it waits for
    imports that compiled the rules before a change, and they wait for it."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(hashtextextended(%s, 0))", [LOCK_KEY])


def import_allocator() -> Allocator:
    """The rules an import applies, read under the shared lock (call inside its transaction)."""
    allocation_lock(shared=True)
    return Allocator(*rules_compile())


def allocate_import(import_id: int, allocator: Allocator | None = None) -> AllocationCount:
    """Allocates an import's freshly written line items (inside its transaction, after
    `import_allocator`, whose owners the rows were written with)."""
    return _allocate(
        allocator or import_allocator(), "{t}.billing_import_id = %s", [import_id], fresh=True
    )


def allocate_range(start: datetime, end: datetime) -> AllocationCount:
    """Deletes and recomputes the allocations of line items charged in [start, end)."""
    allocation_lock(shared=False)
    return _allocate(
        Allocator(*rules_compile()),
        "{t}.charge_period_start >= %s AND {t}.charge_period_start < %s",
        [db_time(start), db_time(end)],
        fresh=False,
    )


def _allocate(
    allocator: Allocator, where: str, params: list[Any], *, fresh: bool
) -> AllocationCount:
    """`fresh`: the rows were just written, with their owners, and have no allocations."""
    if not fresh:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {ALLOC_TABLE} WHERE line_item_id IN "
                f"(SELECT id FROM {LINE_TABLE} AS li WHERE {where.format(t='li')})",
                params,
            )
            cursor.execute(
                f"UPDATE {LINE_TABLE} AS li SET team_id = NULL, agent_id = NULL "
                f"WHERE {where.format(t='li')} "
                "AND (li.team_id IS NOT NULL OR li.agent_id IS NOT NULL)",
                params,
            )
    if connection.vendor == "postgresql":
        return _allocate_by_decision(allocator, where.format(t="li"), params, fresh=fresh)
    return _allocate_by_row(allocator, where.format(t="li"), params, fresh=fresh)


NULL = "\\N"
NULL_PAIR = f"{NULL}\t{NULL}"
DECISION_TABLE = "billing_alloc_decision"


def _allocate_by_decision(
    allocator: Allocator, where: str, params: list[Any], *, fresh: bool
) -> AllocationCount:
    """PostgreSQL: the rules are evaluated once per distinct (provider, service, tags[,
    resource]) in Python, the decisions go to a temporary table, and the single-owner and
    unallocated rows are written by one INSERT … SELECT joining it; only shared line items
    come back to Python to be split."""
    count = AllocationCount()
    resource = ", li.resource_id" if allocator.reads_resource else ""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {DECISION_TABLE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {DECISION_TABLE} (provider text, service_name text, "
            "tags jsonb, resource_id text, team_id bigint, agent_id bigint, method text, "
            "rule_name text, shared integer) ON COMMIT DROP"
        )
    shared_rules: list[CompiledRule] = []
    distinct = (
        f"SELECT DISTINCT li.provider, li.service_name, li.tags::text{resource} "
        f"FROM {LINE_TABLE} AS li WHERE {where}"
    )
    # In batches: with a resource rule there can be as many keys as rows.
    for keys in _fetch(distinct, params):
        decisions = []
        for key in keys:
            decision = allocator.decide(key[0], key[1], key[2], key[3] if resource else "")
            row: tuple[Any, ...]
            if isinstance(decision, Owner):
                row = (
                    decision.team_id,
                    decision.agent_id,
                    AllocationMethod.TAG,
                    decision.rule.name,
                    None,
                )
            elif decision is None:
                row = (None, None, AllocationMethod.UNALLOCATED, "", None)
            else:
                index = next((i for i, r in enumerate(shared_rules) if r is decision), None)
                if index is None:
                    index = len(shared_rules)
                    shared_rules.append(decision)
                row = (None, None, "", decision.name, index)
            decisions.append((key[0], key[1], key[2], key[3] if resource else "", *row))
        with (
            connection.connection.cursor() as raw,
            raw.copy(f"COPY {DECISION_TABLE} FROM STDIN") as copy,
        ):
            for decided in decisions:
                copy.write_row(decided)
    join = (
        f"JOIN {DECISION_TABLE} AS d ON d.provider = li.provider "
        "AND d.service_name = li.service_name AND d.tags = li.tags"
        + (" AND d.resource_id = li.resource_id" if resource else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {DECISION_TABLE}")
        # The bill's rows were just written, so the planner's statistics do not know them and
        # it would pick a nested loop over the decisions (measured: 47 s for 20k rows). A hash
        # join on the small decision table is always right here.
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute(
            f"INSERT INTO {ALLOC_TABLE} ({', '.join(ALLOC_COLUMNS)}) "
            "SELECT li.id, d.team_id, d.agent_id, d.method, d.rule_name, li.billed_cost, "
            "li.effective_cost, li.billing_currency, li.charge_period_start, "
            "li.charge_period_end, li.provider, li.service_name "
            f"FROM {LINE_TABLE} AS li {join} WHERE d.shared IS NULL AND {where}",
            params,
        )
        count.allocations += cursor.rowcount
        count.line_items += cursor.rowcount
        if not fresh:
            _set_owners(cursor, join, where, params)
    if shared_rules:
        sql = (
            "SELECT li.id, li.provider, li.service_name, li.billed_cost::text, "
            "li.effective_cost::text, li.billing_currency, li.charge_period_start, "
            f"li.charge_period_end, d.shared FROM {LINE_TABLE} AS li {join} "
            f"WHERE d.shared IS NOT NULL AND {where} ORDER BY li.id"
        )
        for batch in _fetch(sql, params):
            rows = []
            for pk, provider, service, billed, effective, currency, start, end, shared in batch:
                rows.extend(
                    allocator.split(
                        shared_rules[shared],
                        (pk, billed, effective, currency, start, end, provider, service),
                    )
                )
            count.line_items += len(batch)
            count.allocations += len(rows)
            _insert_allocations(rows)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_nestloop = on")
    return count


def _set_owners(cursor: Any, join: str, where: str, params: list[Any]) -> None:
    """The line item names its owner when one rule gave it whole to one team."""
    cursor.execute(
        f"UPDATE {LINE_TABLE} AS li SET team_id = d.team_id, agent_id = d.agent_id "
        f"FROM {DECISION_TABLE} AS d WHERE {join.partition(' ON ')[2]} "
        f"AND d.method = %s AND {where}",
        [AllocationMethod.TAG, *params],
    )


def _allocate_by_row(
    allocator: Allocator, where: str, params: list[Any], *, fresh: bool
) -> AllocationCount:
    """Other databases (SQLite in development): every line item through Python."""
    count = AllocationCount()
    sql = (
        "SELECT li.id, li.provider, li.service_name, li.resource_id, li.tags, li.billed_cost, "
        "li.effective_cost, li.billing_currency, li.charge_period_start, li.charge_period_end "
        f"FROM {LINE_TABLE} AS li WHERE {where} ORDER BY li.id"
    )
    owners: list[CostLineItem] = []
    for batch in _fetch(sql, params):
        rows = []
        for pk, provider, service, resource, tags, billed, effective, currency, start, end in batch:
            tags_text = tags if isinstance(tags, str) else json.dumps(tags or {})
            decision = allocator.decide(provider, service, tags_text, resource)
            start, end = _as_time(start), _as_time(end)
            line = (pk, str(billed), str(effective), currency, start, end, provider, service)
            if isinstance(decision, Owner):
                rows.append(allocator.whole(line, decision))
                owners.append(
                    CostLineItem(pk=pk, team_id=decision.team_id, agent_id=decision.agent_id)
                )
            elif decision is None:
                rows.append(allocator.whole(line, None))
            else:
                rows.extend(allocator.split(decision, line))
        count.line_items += len(batch)
        count.allocations += len(rows)
        _insert_allocations(rows)
    if not fresh:
        CostLineItem.objects.bulk_update(owners, ["team", "agent"], batch_size=FETCH_ROWS)
    return count


def _fetch(sql: str, params: list[Any]) -> Iterator[list[tuple[Any, ...]]]:
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        # A server-side cursor (inside a transaction, as PostgreSQL requires; the preview has
        # none of its own): a big bill's rows are read FETCH_ROWS at a time.
        with (
            transaction.atomic(),
            connection.connection.cursor(name="opsdash_allocation") as cursor,
        ):
            cursor.execute(sql, params)
            while batch := cursor.fetchmany(FETCH_ROWS):
                yield batch
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(FETCH_ROWS):
            yield batch


def _insert_allocations(rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    if connection.vendor == "postgresql":
        with (
            connection.connection.cursor() as cursor,
            cursor.copy(f"COPY {ALLOC_TABLE} ({', '.join(ALLOC_COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    CostAllocation.objects.bulk_create(
        [CostAllocation(**dict(zip(ALLOC_COLUMNS, row, strict=True))) for row in rows]
    )


PREVIEW_LIMIT = 200_000


@dataclass
class PreviewRow:
    team_id: int | None
    currency: str
    before: Decimal
    after: Decimal

    @property
    def change(self) -> Decimal:
        return self.after - self.before


@dataclass
class Preview:
    rows: list[PreviewRow]
    line_items: int
    truncated: bool


def allocation_preview(
    rules: list[AllocationRule], start: datetime, end: datetime, *, limit: int = PREVIEW_LIMIT
) -> Preview:
    """How `rules` (saved or not) would allocate the billed cost of line items charged in
    [start, end), per team and currency, next to today's allocations. Reads only; at most
    `limit` line items (the newest are left out beyond it)."""
    allocator = Allocator(*rules_compile(rules))
    text = "::text" if connection.vendor == "postgresql" else ""
    sql = (
        f"SELECT li.id, li.provider, li.service_name, li.resource_id, li.tags{text}, "
        f"li.billed_cost{text}, li.effective_cost{text}, li.billing_currency, "
        "li.charge_period_start, li.charge_period_end "
        f"FROM {LINE_TABLE} AS li WHERE li.charge_period_start >= %s "
        "AND li.charge_period_start < %s ORDER BY li.charge_period_start, li.id LIMIT %s"
    )
    after: dict[tuple[int | None, str], Decimal] = {}
    seen = 0
    last_start: datetime | None = None
    for batch in _fetch(sql, [db_time(start), db_time(end), limit + 1]):
        for pk, provider, service, resource, tags, billed, effective, currency, s, e in batch:
            seen += 1
            if seen > limit:
                break
            last_start = s
            tags_text = tags if isinstance(tags, str) else json.dumps(tags or {})
            decision = allocator.decide(provider, service, tags_text, resource)
            s, e = _as_time(s), _as_time(e)
            line = (pk, str(billed), str(effective), currency, s, e, provider, service)
            if isinstance(decision, CompiledRule):
                shares = allocator.split(decision, line)
            else:
                shares = [allocator.whole(line, decision)]
            for share in shares:
                key = (share[1], currency)
                after[key] = after.get(key, Decimal(0)) + Decimal(share[5])
    truncated = seen > limit
    current = CostAllocation.objects.filter(
        charge_period_start__gte=start, charge_period_start__lt=end
    )
    if truncated and last_start is not None:
        current = current.filter(charge_period_start__lte=last_start)
    before: dict[tuple[int | None, str], Decimal] = {
        (r["team_id"], r["billing_currency"]): r["b"]
        for r in current.values("team_id", "billing_currency").annotate(b=Sum("billed_cost"))
    }
    keys = sorted(set(before) | set(after), key=lambda k: (k[0] is None, k[0] or 0, k[1]))
    return Preview(
        rows=[
            PreviewRow(k[0], k[1], before.get(k, Decimal(0)), after.get(k, Decimal(0)))
            for k in keys
        ],
        line_items=min(seen, limit),
        truncated=truncated,
    )
