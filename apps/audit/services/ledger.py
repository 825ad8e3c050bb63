"""The hash chain of sealed batches, and its verification."""

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from django.db import connection
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from apps.audit.canonical import canonical_event, content_hash, format_ts
from apps.audit.merkle import merkle_root
from apps.audit.models import Event, LedgerHead, LedgerSeal
from apps.core.db import pg_cursor
from apps.fleet.models import Agent

GENESIS_HASH = hashlib.sha256(b"opsdash ledger genesis").hexdigest()


def seal_hash_compute(
    *,
    seq: int,
    batch_id: uuid.UUID,
    event_count: int,
    root: str,
    prev_seal_hash: str,
    sealed_at: datetime,
    source: str,
) -> str:
    text = "|".join(
        [
            str(seq),
            str(batch_id),
            str(event_count),
            root,
            prev_seal_hash,
            format_ts(sealed_at),
            source,
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()


def ledger_batch_seal(
    *, batch_id: uuid.UUID, content_hashes: Sequence[str], source: str
) -> LedgerSeal:
    """Chains one batch onto the ledger. Call inside the ingest transaction, as its last write.

    The head row is the only lock shared by all writers; taking it last keeps it held for
    the shortest time (one batch, never one event). On PostgreSQL the seal and the new head
    are written by one statement, so the lock is held for two round trips and the commit.
    """
    root = merkle_root(content_hashes)
    head_seq, head_hash = _ledger_head_locked()
    sealed_at = timezone.now()
    seq = head_seq + 1
    seal = LedgerSeal(
        seq=seq,
        batch_id=batch_id,
        event_count=len(content_hashes),
        merkle_root=root,
        prev_seal_hash=head_hash,
        seal_hash=seal_hash_compute(
            seq=seq,
            batch_id=batch_id,
            event_count=len(content_hashes),
            root=root,
            prev_seal_hash=head_hash,
            sealed_at=sealed_at,
            source=source,
        ),
        sealed_at=sealed_at,
        source=source,
    )
    if connection.vendor == "postgresql":
        with pg_cursor() as cursor:
            cursor.execute(
                _PG_SEAL,
                [
                    seal.seq,
                    seal.batch_id,
                    seal.event_count,
                    seal.merkle_root,
                    seal.prev_seal_hash,
                    seal.seal_hash,
                    seal.sealed_at,
                    seal.source,
                    seal.seq,
                    seal.seal_hash,
                ],
                prepare=True,
            )
    else:
        seal.save(force_insert=True)
        LedgerHead.objects.filter(pk=1).update(seq=seq, seal_hash=seal.seal_hash)
    return seal


_PG_SEAL = """
WITH sealed AS (
    INSERT INTO audit_ledgerseal (seq, batch_id, event_count, merkle_root, prev_seal_hash,
        seal_hash, sealed_at, source)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
)
UPDATE audit_ledgerhead SET seq = %s, seal_hash = %s WHERE id = 1
"""


_HEAD_SQL = "SELECT seq, seal_hash FROM audit_ledgerhead WHERE id = 1"


def ledger_head_lock() -> None:
    """Locks the ledger head until the transaction ends: the point every writer of sealed
    events passes one at a time, which other writers use to order themselves with them."""
    _ledger_head_locked()


def _ledger_head_locked() -> tuple[int, str]:
    """The head's (seq, seal_hash), locked until the transaction ends."""
    if connection.vendor == "postgresql":
        with pg_cursor() as pg:
            pg.execute(_HEAD_SQL + " FOR UPDATE", prepare=True)
            found = pg.fetchone()
        if found is not None:
            return int(found[0]), str(found[1])
    sql = _HEAD_SQL + (" FOR UPDATE" if connection.features.has_select_for_update else "")
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
        if row is None:
            # Only after a table flush (tests); ON CONFLICT keeps two first writers from colliding.
            LedgerHead.objects.bulk_create(
                [LedgerHead(pk=1, seq=0, seal_hash=GENESIS_HASH)], ignore_conflicts=True
            )
            cursor.execute(sql)
            row = cursor.fetchone()
    return int(row[0]), str(row[1])


# The stored columns a hash covers, data as JSON text (decoded by msgspec: faster than the ORM).
_VERIFY_COLUMNS = (
    "id",
    "ts",
    "agent_id",
    "type",
    "action_id",
    "incident_id",
    "agent_version",
    "prompt_version",
    "source",
    "content_hash",
    "data_text",
)


def _row_content_hash(row: tuple[Any, ...], slugs: dict[int, str]) -> str:
    event_id, ts, agent_id, event_type, action_id, incident_id, agent_v, prompt_v, source = row[:9]
    return content_hash(
        canonical_event(
            event_id=str(event_id),
            ts=ts,
            agent_slug=slugs.get(agent_id, ""),
            event_type=event_type,
            action_id=action_id,
            incident_id=incident_id,
            agent_version=agent_v,
            prompt_version=prompt_v,
            data=msgspec.json.decode(row[-1]),
            source=source,
        )
    )


@dataclass
class VerifyProblem:
    seq: int | None
    batch_id: str | None
    message: str


@dataclass
class VerifyReport:
    seals_checked: int
    events_checked: int
    head_seq: int
    problems: list[VerifyProblem]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> VerifyProblem | None:
        return self.problems[0] if self.problems else None


def ledger_verify(*, max_problems: int = 20, progress: object = None) -> VerifyReport:
    """Walks the chain seal by seal, recomputing every event hash and Merkle root.

    Finds events changed (hash or root differ), deleted (count or root differ), inserted behind
    the API (rows in no sealed batch, or more rows than the seal counted) and a broken chain.
    """
    problems: list[VerifyProblem] = []
    slugs = dict(Agent.objects.values_list("id", "slug"))
    prev_hash = GENESIS_HASH
    expected_seq = 1
    seals_checked = events_checked = 0
    for seal in LedgerSeal.objects.order_by("seq").iterator(chunk_size=500):
        seals_checked += 1
        where = (seal.seq, str(seal.batch_id))
        if seal.seq != expected_seq:
            problems.append(VerifyProblem(*where, f"seal #{expected_seq} is missing"))
        expected_seq = seal.seq + 1
        if seal.prev_seal_hash != prev_hash:
            problems.append(VerifyProblem(*where, "does not chain to the previous seal"))
        recomputed = seal_hash_compute(
            seq=seal.seq,
            batch_id=seal.batch_id,
            event_count=seal.event_count,
            root=seal.merkle_root,
            prev_seal_hash=seal.prev_seal_hash,
            sealed_at=seal.sealed_at,
            source=seal.source,
        )
        if recomputed != seal.seal_hash:
            problems.append(VerifyProblem(*where, "the seal row itself was altered"))
        prev_hash = seal.seal_hash

        events = list(
            Event.objects.filter(batch_id=seal.batch_id)
            .order_by("batch_index")
            .annotate(data_text=Cast("data", TextField()))
            .values_list(*_VERIFY_COLUMNS)
        )
        events_checked += len(events)
        hashes = []
        for row in events:
            actual = _row_content_hash(row, slugs)
            if actual != row[-2]:
                problems.append(
                    VerifyProblem(*where, f"event {row[0]} was changed after it was sealed")
                )
            hashes.append(actual)
        if len(events) != seal.event_count:
            change = "deleted" if len(events) < seal.event_count else "inserted"
            problems.append(
                VerifyProblem(
                    *where,
                    f"holds {len(events)} events but sealed {seal.event_count}: events were {change}",
                )
            )
        elif merkle_root(hashes) != seal.merkle_root:
            problems.append(VerifyProblem(*where, "Merkle root does not match its events"))
        if callable(progress):
            progress(len(events))
        if len(problems) >= max_problems:
            break

    head = LedgerHead.objects.filter(pk=1).first() or LedgerHead(seq=0, seal_hash=GENESIS_HASH)
    if len(problems) < max_problems:
        if head.seq != expected_seq - 1:
            problems.append(
                VerifyProblem(
                    head.seq,
                    None,
                    f"ledger head names seal #{head.seq}, "
                    f"but the chain ends at #{expected_seq - 1}",
                )
            )
        elif head.seal_hash != prev_hash:
            problems.append(VerifyProblem(head.seq, None, "ledger head hash does not match"))
        for orphan in _orphan_events():
            problems.append(
                VerifyProblem(
                    None,
                    str(orphan.batch_id),
                    f"event {orphan.id} belongs to no sealed batch: inserted behind the API",
                )
            )
            if len(problems) >= max_problems:
                break
    return VerifyReport(seals_checked, events_checked, head.seq, problems)


def _orphan_events() -> Iterator[Event]:
    sealed = LedgerSeal.objects.values("batch_id")
    return Event.objects.exclude(batch_id__in=sealed).order_by("received_at").iterator()


def event_inclusion_proof(event: Event) -> dict[str, object]:
    """Everything needed to check offline that `event` is in its sealed batch."""
    from apps.audit.merkle import inclusion_proof

    seal = LedgerSeal.objects.get(batch_id=event.batch_id)
    hashes = list(
        Event.objects.filter(batch_id=event.batch_id)
        .order_by("batch_index")
        .values_list("content_hash", flat=True)
    )
    index = hashes.index(event.content_hash)
    return {
        "event_id": str(event.id),
        "content_hash": event.content_hash,
        "leaf_index": index,
        "tree_size": len(hashes),
        "proof": inclusion_proof(hashes, index),
        "merkle_root": seal.merkle_root,
        "seal_seq": seal.seq,
        "seal_hash": seal.seal_hash,
    }


def ledger_verify_record(
    *, triggered_by: str = "", progress: object = None
) -> "VerifyReportRecord":
    """Runs the verification and keeps its result for the ledger page."""
    from apps.audit.models import LedgerVerification

    run = LedgerVerification.objects.create(triggered_by=triggered_by)
    report = ledger_verify(progress=progress)
    run.finished_at = timezone.now()
    run.ok = report.ok
    run.seals_checked = report.seals_checked
    run.events_checked = report.events_checked
    run.head_seq = report.head_seq
    run.problems = [
        {"seq": p.seq, "batch_id": p.batch_id, "message": p.message} for p in report.problems
    ]
    first = report.first_problem
    run.first_problem = _describe(first) if first else ""
    run.save()
    return VerifyReportRecord(report=report, run=run)


def _describe(problem: VerifyProblem) -> str:
    where = f"seal #{problem.seq}" if problem.seq is not None else f"batch {problem.batch_id}"
    return f"{where}: {problem.message}"


@dataclass
class VerifyReportRecord:
    report: VerifyReport
    run: object

    def describe_first(self) -> str:
        first = self.report.first_problem
        return _describe(first) if first else ""
