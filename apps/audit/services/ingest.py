"""Accepting audit events: validate, scrub, store, fold into actions and seal, in one transaction.

This is the hot path of opsdash (≥10,000 events/s on 2 cores), so validation uses msgspec
instead of DRF serializers and PostgreSQL gets a single INSERT … SELECT FROM unnest(…).
"""

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.actions.models import Action
from apps.actions.services import (
    FOLDED_TYPES,
    ActionFact,
    actions_apply_facts,
    actions_lock_for_ingest,
)
from apps.audit.models import AGENT_WRITABLE_TYPES, EventSource, EventType
from apps.audit.services.event_prepare import (
    ALL_TYPES,
    EventPreparer,
    ItemError,
    PreparedEvent,
    agent_lookup_cache,
)
from apps.audit.services.event_store import events_insert, known_hashes
from apps.audit.services.ledger import ledger_batch_seal
from apps.budgets.gate import gate_calls_close
from apps.budgets.services import Counted, budgets_count
from apps.costs.services import UsageValues, llm_usage_record
from apps.fleet.models import Agent

__all__ = [
    "ALL_TYPES",
    "EventPreparer",
    "IngestResult",
    "ItemError",
    "agent_lookup_cache",
    "event_batch_ingest",
]

logger = logging.getLogger(__name__)


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    seal_seq: int | None = None
    accepted_ids: list[str] = field(default_factory=list)

    def as_response(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def event_batch_ingest(
    *,
    items: Sequence[bytes],
    source: str = EventSource.API,
    token_agent: Agent | None = None,
    allowed_types: frozenset[str] | None = None,
    agents_by_slug: Callable[[str], Agent | None] | None = None,
    first_index: int = 0,
    locked_actions: dict[str, Action] | None = None,
    expect_new: bool = False,
) -> IngestResult:
    """Validates, stores and seals a batch; good items are kept even when others are refused.

    Returns per-item rejections by index. Everything stored is committed before this returns;
    derived work is queued only after the commit (and a periodic sweep catches up if the broker
    is down). A caller already inside a transaction that holds the row locks of every action
    the batch touches passes them as `locked_actions`; they are folded in place. A caller that
    expects every id to be new skips the duplicate pre-check (`expect_new`); a repeat is still
    caught by the insert and reported as a duplicate or a conflict.
    """
    if allowed_types is None:
        allowed_types = AGENT_WRITABLE_TYPES if source == EventSource.API else ALL_TYPES
    preparer = EventPreparer(
        source=source,
        token_agent=token_agent,
        allowed_types=allowed_types,
        agents_by_slug=agents_by_slug or (None if token_agent else agent_lookup_cache()),
    )
    result = IngestResult()
    prepared: list[PreparedEvent] = []
    for offset, raw in enumerate(items):
        index = first_index + offset
        try:
            prepared.append(preparer.prepare(index, raw))
        except ItemError as exc:
            result.rejected.append({"index": index, "id": exc.event_id, "errors": exc.errors})
    if prepared:
        _store(prepared, source, result, locked_actions, expect_new)
    result.rejected.sort(key=lambda r: r["index"])
    return result


def _reject(result: IngestResult, event: PreparedEvent, errors: dict[str, list[str]]) -> None:
    result.rejected.append({"index": event.index, "id": str(event.event_id), "errors": errors})


CONFLICT_MESSAGE = (
    "An event with this id was already accepted with different content; "
    "events are immutable, so send a new id for a new event."
)


def _classify_known(
    candidates: list[PreparedEvent], known: dict[uuid.UUID, str], result: IngestResult
) -> list[PreparedEvent]:
    """Splits off events whose id is already stored: same content → duplicate, else conflict."""
    fresh = []
    for event in candidates:
        stored_hash = known.get(event.event_id)
        if stored_hash is None:
            fresh.append(event)
        elif stored_hash == event.content_hash:
            result.duplicates += 1
        else:
            _reject(result, event, {"id": [CONFLICT_MESSAGE]})
    return fresh


def _store(
    prepared: list[PreparedEvent],
    source: str,
    result: IngestResult,
    locked_actions: dict[str, Action] | None,
    expect_new: bool,
) -> None:
    # Repeats inside one batch: the first occurrence stands for the id.
    first_seen: dict[uuid.UUID, PreparedEvent] = {}
    unique: list[PreparedEvent] = []
    for event in prepared:
        seen = first_seen.get(event.event_id)
        if seen is None:
            first_seen[event.event_id] = event
            unique.append(event)
        elif seen.content_hash == event.content_hash:
            result.duplicates += 1
        else:
            _reject(result, event, {"id": [CONFLICT_MESSAGE + " (repeated within this batch)"]})

    batch_id = uuid.uuid4()
    # Inside a caller's transaction no savepoint is needed: any error here aborts it whole.
    with transaction.atomic(savepoint=False):
        known = {} if expect_new else known_hashes([e.event_id for e in unique])
        fresh = _classify_known(unique, known, result) if known else unique

        owners: dict[str, int] = {}
        for event in fresh:
            if event.action_id and event.event_type in FOLDED_TYPES:
                owners.setdefault(event.action_id, event.agent.pk)
        if locked_actions is not None and owners.keys() <= locked_actions.keys():
            actions = locked_actions
        else:
            actions = actions_lock_for_ingest(owners=owners)
        if actions:
            owned = []
            for event in fresh:
                action = (
                    actions.get(event.action_id or "") if event.event_type in FOLDED_TYPES else None
                )
                if action is not None and action.agent_id != event.agent.pk:
                    _reject(
                        result,
                        event,
                        {
                            "action_id": [
                                "This action_id belongs to another agent; action ids must be unique."
                            ]
                        },
                    )
                else:
                    owned.append(event)
            fresh = owned

        landed = events_insert(fresh, batch_id=batch_id, source=source)
        if len(landed) != len(fresh):
            # Another batch inserted some of these ids between our check and our insert.
            raced = [e for e in fresh if e.event_id not in landed]
            again = known_hashes([e.event_id for e in raced])
            _classify_known(raced, again, result)
            fresh = [e for e in fresh if e.event_id in landed]
        if not fresh:
            return

        # Priced in this transaction: a budget reading spend sees every committed llm_call.
        usages = llm_usage_record(events=fresh)
        actions_apply_facts(
            actions=actions, facts=_facts(fresh), agents={e.agent.pk: e.agent for e in fresh}
        )
        # Counted in this transaction too: a halt lands with the event that crossed the cap,
        # and the gate reservations these llm_calls settle are given back with their spend.
        reservations = [
            e.data["reservation_id"]
            for e in fresh
            if e.event_type == EventType.LLM_CALL and e.data.get("reservation_id")
        ]
        released = gate_calls_close(reservations, timezone.now()) if reservations else {}
        budgets_count(_counted(usages, fresh), released=released)
        fresh.sort(key=lambda e: e.index)
        seal = ledger_batch_seal(
            batch_id=batch_id, content_hashes=[e.content_hash for e in fresh], source=source
        )
        result.accepted = len(fresh)
        result.seal_seq = seal.seq
        result.accepted_ids = [str(e.event_id) for e in fresh]
        transaction.on_commit(lambda: _queue_derived(seal.seq))


def _counted(usages: Sequence[UsageValues], events: Sequence[PreparedEvent]) -> list[Counted]:
    counted = [
        Counted(
            agent_id=u.agent_id,
            team_id=u.team_id,
            ts=u.ts,
            model=u.model,
            usd=u.cost_usd,
            tokens=u.input_tokens
            + u.output_tokens
            + u.cache_write_5m_tokens
            + u.cache_write_1h_tokens
            + u.cache_read_tokens,
            wh=u.energy_wh,
        )
        for u in usages
    ]
    counted += [
        Counted(agent_id=e.agent.pk, team_id=e.agent.team_id, ts=e.ts, actions=1)
        for e in events
        if e.event_type == EventType.PROPOSAL
    ]
    return counted


def _facts(events: Iterable[PreparedEvent]) -> list[ActionFact]:
    return [
        ActionFact(
            event_id=str(e.event_id),
            ts=e.ts,
            agent_id=e.agent.pk,
            event_type=e.event_type,
            action_id=e.action_id,
            incident_id=e.incident_id,
            agent_version=e.agent_version,
            prompt_version=e.prompt_version,
            data=e.data,
        )
        for e in events
        if e.action_id and e.event_type in FOLDED_TYPES
    ]


def _queue_derived(seal_seq: int) -> None:
    from apps.audit.tasks import queue_derived_after_commit

    queue_derived_after_commit(seal_seq)
