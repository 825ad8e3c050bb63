"""Writes of the cost app: usage rows for stored llm_calls (at ingest and when repricing) and
new price rows."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

import psycopg
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.models import Event, EventType
from apps.costs.energy import EnergyConfig, energy_config, llm_energy_estimate
from apps.costs.models import (
    PRICE_FIELDS,
    CostDriverRate,
    CostSource,
    EnergySource,
    LlmUsage,
    ModelPrice,
)
from apps.costs.pricing import PriceBook, usage_cost
from apps.costs.tokens import token_usage
from apps.fleet.models import Agent


class StoredLlmCall(Protocol):
    """What usage needs of a stored event (a PreparedEvent at ingest, an Event when repricing)."""

    ts: datetime
    action_id: str | None
    incident_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class LlmCallRow:
    event_id: uuid.UUID
    agent_id: int
    team_id: int | None
    call: StoredLlmCall


class UsageValues(NamedTuple):
    """The columns of one LlmUsage row, in table order: the hot path builds these, not model
    instances (a 23-field Model.__init__ per call costs more than the pricing itself)."""

    event_id: uuid.UUID
    ts: datetime
    agent_id: int
    team_id: int | None
    action_id: str | None
    incident_id: str | None
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    cache_read_tokens: int
    batch: bool
    token_convention: str
    cost_usd: Decimal | None
    cost_source: str
    price_id: int | None
    energy_wh: Decimal
    energy_source: str
    gco2e: Decimal
    grid_region: str
    priced_at: datetime


def _reported_cost(data: dict[str, Any]) -> Decimal | None:
    # Ingest stored it as a decimal string (never a float); anything else is not a report.
    value = data.get("cost_usd")
    if not isinstance(value, str):
        return None
    try:
        cost = Decimal(value)
    except ArithmeticError:
        return None
    return cost if cost.is_finite() and cost >= 0 else None


def _price_book(calls: Sequence[LlmCallRow]) -> PriceBook:
    """One query: every price row of the providers in play effective by the latest call."""
    providers = {str(r.call.data.get("provider") or "anthropic").lower() for r in calls}
    latest = max(r.call.ts for r in calls)
    return PriceBook(ModelPrice.objects.filter(provider__in=providers, effective_from__lte=latest))


def _usage(row: LlmCallRow, book: PriceBook, energy: EnergyConfig, now: datetime) -> UsageValues:
    data = row.call.data
    # Providers are matched in lower case (agents write "Anthropic" as often as "anthropic").
    provider = str(data.get("provider") or "anthropic").lower()
    model = str(data.get("model") or "")
    tokens = token_usage(data)
    reported = _reported_cost(data)
    price_id = None
    if reported is not None:
        cost: Decimal | None = reported
        source = CostSource.REPORTED
    else:
        price = book.price_for(provider, model, row.call.ts)
        if price is None:
            cost, source = None, CostSource.UNPRICED
        else:
            cost, source, price_id = usage_cost(tokens, price), CostSource.PRICE_TABLE, price.pk
    region = data.get("region")
    # Every call starts with the coefficient estimate; self-hosted models with measured GPU
    # power get theirs replaced, window by window, with energy_source MEASURED
    # (apps.costs.energy_services.measured_window_integrate).
    estimate = llm_energy_estimate(
        tokens, model, region if isinstance(region, str) else None, energy
    )
    return UsageValues(
        row.event_id,
        row.call.ts,
        row.agent_id,
        row.team_id,
        row.call.action_id,
        row.call.incident_id,
        provider,
        model,
        tokens.input,
        tokens.output,
        tokens.cache_write_5m,
        tokens.cache_write_1h,
        tokens.cache_read,
        tokens.batch,
        tokens.convention,
        cost,
        source,
        price_id,
        estimate.wh,
        EnergySource.ESTIMATED,
        estimate.gco2e,
        estimate.region,
        now,
    )


def llm_usage_compute(calls: Sequence[LlmCallRow]) -> list[UsageValues]:
    """Unsaved usage rows for these calls, priced and estimated; one query (the prices)."""
    if not calls:
        return []
    book = _price_book(calls)
    energy = energy_config()
    now = timezone.now()
    return [_usage(row, book, energy, now) for row in calls]


class IngestedEvent(StoredLlmCall, Protocol):
    event_id: uuid.UUID
    event_type: str
    agent: Agent


def llm_usage_record(*, events: Iterable[IngestedEvent]) -> list[UsageValues]:
    """Writes the usage of the llm_calls among freshly stored events; called by ingest inside
    its transaction, so a committed llm_call always has its cost (budgets read it at once).

    Idempotent: an event id that already has a row keeps it (ON CONFLICT DO NOTHING).
    Returns the rows, for the budgets that count them in the same transaction."""
    calls = [
        LlmCallRow(event_id=e.event_id, agent_id=e.agent.pk, team_id=e.agent.team_id, call=e)
        for e in events
        if e.event_type == EventType.LLM_CALL
    ]
    rows = llm_usage_compute(calls)
    _usage_insert(rows)
    return rows


_COLUMNS = UsageValues._fields
_PG_TYPES = {
    "event_id": "uuid",
    "ts": "timestamptz",
    "priced_at": "timestamptz",
    "agent_id": "bigint",
    "team_id": "bigint",
    "price_id": "bigint",
    "input_tokens": "bigint",
    "output_tokens": "bigint",
    "cache_write_5m_tokens": "bigint",
    "cache_write_1h_tokens": "bigint",
    "cache_read_tokens": "bigint",
    "batch": "boolean",
    "cost_usd": "numeric",
    "energy_wh": "numeric",
    "gco2e": "numeric",
}
# Every other column is text; a new numeric column must be named above or the insert fails.
_TYPES = tuple(_PG_TYPES.get(name, "text") for name in _COLUMNS)
# Column and type names are the constants above, never input.
_ARRAYS = ", ".join(f"%b::{t}[]" for t in _TYPES)
_PG_INSERT = f"INSERT INTO costs_llmusage ({', '.join(_COLUMNS)}) SELECT * FROM unnest({_ARRAYS}) ON CONFLICT (event_id) DO NOTHING"  # noqa: S608


def _usage_insert(rows: list[UsageValues]) -> int:
    if not rows:
        return 0
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        # One statement per batch with binary arrays, as the event insert does: a bulk_create
        # of 250 rows x 23 columns binds 5,750 parameters client-side.
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                _PG_INSERT,
                [list(column) for column in zip(*rows, strict=True)],
                prepare=True,
            )
            return int(cursor.rowcount)
    existing = set(
        LlmUsage.objects.filter(event_id__in=[r.event_id for r in rows]).values_list(
            "event_id", flat=True
        )
    )
    fresh = [LlmUsage(**r._asdict()) for r in rows if r.event_id not in existing]
    LlmUsage.objects.bulk_create(fresh, ignore_conflicts=True)
    return len(fresh)


# --- Repricing ---------------------------------------------------------------------------------

REPRICE_CHUNK = 2000


@dataclass
class RepriceResult:
    examined: int = 0
    created: int = 0
    repriced: int = 0
    unchanged: int = 0
    unpriced: int = 0


def llm_calls_reprice(
    *, since: datetime | None = None, chunk: int = REPRICE_CHUNK
) -> RepriceResult:
    """(Re)prices stored llm_calls from `since` on: writes the missing usage rows, and updates
    price-table rows whose price row or cost the table now gives differently (after a new
    price or a correction) and unpriced rows the table can now price. Reported costs are
    never touched. Idempotent: a second run changes nothing. One transaction per chunk."""
    result = RepriceResult()
    qs = Event.objects.filter(type=EventType.LLM_CALL).order_by("ts", "id")
    if since is not None:
        qs = qs.filter(ts__gte=since)
    last: tuple[datetime, uuid.UUID] | None = None
    while True:
        page = qs
        if last is not None:
            page = page.filter(Q(ts__gt=last[0]) | Q(ts=last[0], id__gt=last[1]))
        events = list(
            page.select_related("agent").only(
                "id", "ts", "action_id", "incident_id", "data", "agent_id", "agent__team_id"
            )[:chunk]
        )
        if not events:
            return result
        last = (events[-1].ts, events[-1].id)
        _reprice_chunk(events, result)


def _reprice_chunk(events: list[Event], result: RepriceResult) -> None:
    with transaction.atomic():
        existing = {
            u.event_id: u
            for u in LlmUsage.objects.select_for_update().filter(
                event_id__in=[e.id for e in events]
            )
        }
        rows = [
            LlmCallRow(event_id=e.id, agent_id=e.agent_id, team_id=e.agent.team_id, call=e)
            for e in events
        ]
        fresh: list[UsageValues] = []
        changed: list[LlmUsage] = []
        for new in llm_usage_compute(rows):
            result.examined += 1
            old = existing.get(new.event_id)
            if old is None:
                fresh.append(new)
            elif old.cost_source == CostSource.REPORTED or (
                old.price_id == new.price_id and old.cost_usd == new.cost_usd
            ):
                result.unchanged += 1
            else:
                # Only the price changes; tokens, team and energy stay as first recorded.
                old.cost_usd, old.cost_source = new.cost_usd, new.cost_source
                old.price_id, old.priced_at = new.price_id, new.priced_at
                changed.append(old)
            if new.cost_source == CostSource.UNPRICED:
                result.unpriced += 1
        result.created += _usage_insert(fresh)
        LlmUsage.objects.bulk_update(changed, ["cost_usd", "cost_source", "price", "priced_at"])
        result.repriced += len(changed)
        touched = {u.action_id for u in fresh if u.action_id}
        touched |= {u.action_id for u in changed if u.action_id}
    # The actions' cost_per_action facts follow, after the prices are committed.
    from apps.slo.rollups import slo_actions_refresh

    slo_actions_refresh(action_ids=touched)


# --- Price rows ---------------------------------------------------------------------------------


def model_price_create(
    *,
    by: Any,
    provider: str,
    model: str,
    effective_from: datetime,
    prices: dict[str, Decimal],
    batch_discount: Decimal,
    corrects: ModelPrice | None = None,
    source_url: str = "",
    note: str = "",
) -> ModelPrice:
    """Adds a price row. Refuses a second row for the same model and moment, or a row dated
    before the newest price of that model (both would rewrite history silently), unless it is
    a correction of the row in force at that moment; a correction needs a note saying why.
    Stored calls are repriced by `price_llm_calls` (or the task the price page queues)."""
    errors: dict[str, list[str]] = {}
    if timezone.is_naive(effective_from):
        errors["effective_from"] = ["Give the moment with its time zone (UTC is assumed in forms)."]
    for name in PRICE_FIELDS:
        value = prices.get(name)
        if value is None or not value.is_finite() or value < 0:
            errors[name] = ["A price is zero or more USD per million tokens."]
    if not Decimal(0) <= batch_discount <= 1:
        errors["batch_discount"] = ["The batch discount is a share between 0 and 1 (0.5 = half)."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        model_price_history_check(
            provider=provider,
            model=model,
            effective_from=effective_from,
            corrects=corrects,
            note=note,
            lock=True,
        )
        return ModelPrice.objects.create(
            provider=provider,
            model=model,
            effective_from=effective_from,
            batch_discount=batch_discount,
            corrects=corrects,
            source_url=source_url,
            note=note,
            created_by=by if getattr(by, "pk", None) else None,
            **prices,
        )


def model_price_history_check(
    *,
    provider: str,
    model: str,
    effective_from: datetime,
    corrects: ModelPrice | None,
    note: str,
    lock: bool = False,
) -> None:
    """The history rules of price rows (see model_price_create); raises ValidationError."""
    # Serialise writers of one model's history: two FinOps people adding rows at once must
    # not both pass the overlap check.
    qs = ModelPrice.objects.filter(provider=provider, model=model)
    if lock:
        qs = qs.select_for_update()
    same = list(qs.order_by("-effective_from", "-id"))
    superseded = {r.corrects_id for r in same if r.corrects_id is not None}
    current = [r for r in same if r.pk not in superseded]
    if corrects is not None:
        if (corrects.provider, corrects.model) != (provider, model):
            raise ValidationError(
                {
                    "corrects": [
                        f"The corrected row prices {corrects.provider}/{corrects.model}; a "
                        "correction keeps its provider and model."
                    ]
                }
            )
        if corrects.pk not in {r.pk for r in current}:
            raise ValidationError(
                {"corrects": ["Only a price row still in force can be corrected."]}
            )
        if corrects.effective_from != effective_from:
            raise ValidationError(
                {
                    "effective_from": [
                        "A correction keeps the effective date of the row it corrects "
                        f"({corrects.effective_from:%Y-%m-%d %H:%M} UTC)."
                    ]
                }
            )
        if not note.strip():
            raise ValidationError({"note": ["Say why the price is corrected."]})
    else:
        clash = next((r for r in current if r.effective_from == effective_from), None)
        if clash is not None:
            raise ValidationError(
                {
                    "effective_from": [
                        f"{provider}/{model} already has a price from "
                        f"{effective_from:%Y-%m-%d %H:%M} UTC. Prices are never edited: "
                        "choose a later date for a new price, or correct that row."
                    ]
                }
            )
        newest = current[0] if current else None
        if newest is not None and effective_from < newest.effective_from:
            raise ValidationError(
                {
                    "effective_from": [
                        f"{provider}/{model} has a price from "
                        f"{newest.effective_from:%Y-%m-%d %H:%M} UTC; a new row must start "
                        "after it. To fix a past price, correct the row in force then."
                    ]
                }
            )


# --- Cost driver rates ---------------------------------------------------------------------------


def driver_rate_create(
    *,
    by: Any,
    kind: str,
    tool: str,
    usd_rate: Decimal,
    effective_from: date,
    note: str = "",
) -> CostDriverRate:
    """Adds a rate from a day on. A second rate for the same driver and day is refused: rates
    are never edited, so the figures of past days stay explainable."""
    if not usd_rate.is_finite() or usd_rate < 0:
        raise ValidationError({"usd_rate": ["A rate is zero or more USD."]})
    try:
        with transaction.atomic():
            return CostDriverRate.objects.create(
                kind=kind,
                tool=tool,
                usd_rate=usd_rate,
                effective_from=effective_from,
                note=note,
                created_by=by if getattr(by, "pk", None) else None,
            )
    except IntegrityError:  # driver_rate_one_per_day
        what = f"tool {tool}" if tool else "audit-log storage"
        raise ValidationError(
            {
                "effective_from": [
                    f"A rate for {what} from {effective_from:%Y-%m-%d} exists already; rates "
                    "are never edited: start the new rate on another day."
                ]
            }
        ) from None
