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
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
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
        if len(self.decisions) > 200_000:
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

    def allocate(self, row: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        """Allocation rows (CostAllocation columns, see ALLOC_COLUMNS) for one line item row
        (LINE_COLUMNS). Costs stay text on the single-owner path: they are copied, not split."""
        (pk, provider, service, resource, tags_text, billed, effective, currency, start, end) = row
        decision = self.decide(provider, service, tags_text, resource)
        tail = (currency, start, end, provider, service)
        if decision is None:
            yield (pk, None, None, AllocationMethod.UNALLOCATED, "", billed, effective, *tail)
        elif isinstance(decision, Owner):
            yield (
                pk,
                decision.team_id,
                decision.agent_id,
                AllocationMethod.TAG,
                decision.rule.name,
                billed,
                effective,
                *tail,
            )
        else:
            method, weighted = self.shares(decision, _as_time(start), _as_time(end))
            weights = [w for _, w in weighted]
            billed_parts = split_exact(Decimal(billed), weights)
            effective_parts = split_exact(Decimal(effective), weights)
            for (team_id, _), b, e in zip(weighted, billed_parts, effective_parts, strict=True):
                yield (pk, team_id, None, method, decision.name, b, e, *tail)


def _as_time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


LINE_COLUMNS = (
    "id",
    "provider",
    "service_name",
    "resource_id",
    "tags::text",
    "billed_cost::text",
    "effective_cost::text",
    "billing_currency",
    "charge_period_start",
    "charge_period_end",
)
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


def allocate_import(import_id: int) -> AllocationCount:
    """Allocates an import's freshly written line items (inside its transaction)."""
    return _allocate("{t}.billing_import_id = %s", [import_id], fresh=True)


def allocate_range(start: datetime, end: datetime) -> AllocationCount:
    """Deletes and recomputes the allocations of line items charged in [start, end)."""
    return _allocate(
        "{t}.charge_period_start >= %s AND {t}.charge_period_start < %s", [start, end], fresh=False
    )


def _allocate(where: str, params: list[Any], *, fresh: bool) -> AllocationCount:
    line_table = CostLineItem._meta.db_table
    alloc_table = CostAllocation._meta.db_table
    count = AllocationCount()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [LOCK_KEY])
        if not fresh:
            cursor.execute(
                f"DELETE FROM {alloc_table} WHERE line_item_id IN "
                f"(SELECT id FROM {line_table} AS li WHERE {where.format(t='li')})",
                params,
            )
    rules, directory = rules_compile()
    allocator = Allocator(rules, directory)
    for batch in _line_batches(line_table, where, params):
        rows = [alloc for line in batch for alloc in allocator.allocate(line)]
        count.line_items += len(batch)
        count.allocations += len(rows)
        _insert_allocations(alloc_table, rows)
    with connection.cursor() as cursor:
        # The line item names its owner when one rule gave it whole to one team.
        if not fresh:
            cursor.execute(
                f"UPDATE {line_table} AS li SET team_id = NULL, agent_id = NULL "
                f"WHERE {where.format(t='li')} "
                "AND (li.team_id IS NOT NULL OR li.agent_id IS NOT NULL)",
                params,
            )
        cursor.execute(
            f"UPDATE {line_table} AS li SET team_id = a.team_id, agent_id = a.agent_id "
            f"FROM {alloc_table} AS a WHERE a.line_item_id = li.id AND a.method = %s "
            f"AND {where.format(t='li')}",
            [AllocationMethod.TAG, *params],
        )
    return count


def _line_batches(table: str, where: str, params: list[Any]) -> Iterator[list[tuple[Any, ...]]]:
    columns = ", ".join(LINE_COLUMNS)
    sql = f"SELECT {columns} FROM {table} AS li WHERE {where.format(t='li')} ORDER BY id"
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        # A server-side cursor: a 1 GB bill's rows are read FETCH_ROWS at a time.
        with connection.connection.cursor(name="opsdash_allocation") as cursor:
            cursor.itersize = FETCH_ROWS
            cursor.execute(sql, params)
            while True:
                batch = cursor.fetchmany(FETCH_ROWS)
                if not batch:
                    return
                yield batch
    else:  # pragma: no cover - the tests run on PostgreSQL
        sql = sql.replace("tags::text", "tags").replace("_cost::text", "_cost")
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            while batch := cursor.fetchmany(FETCH_ROWS):
                yield [(*r[:5], str(r[5]), str(r[6]), *r[7:]) for r in batch]


def _insert_allocations(table: str, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    if connection.vendor == "postgresql":
        with (
            connection.connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(ALLOC_COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    CostAllocation.objects.bulk_create(  # pragma: no cover
        [CostAllocation(**dict(zip(ALLOC_COLUMNS, row, strict=True))) for row in rows]
    )
