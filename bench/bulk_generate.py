"""Writes millions of demo-fleet events straight into PostgreSQL for volume benchmarks.

    DATABASE_URL=postgres://…/opsdash_volume python bench/bulk_generate.py --events 10000000

The events are the demo generator's (same mix, same validation and scrubbing as ingest), sealed
in batches of 1,000 into a valid ledger, but written with COPY instead of the API, so ten
million take minutes. `verify_audit` passes on the result. The Action read model is not folded
(use the API or import_events for that); per-day counts are rebuilt at the end.
"""

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import django_setup

EVENT_COLUMNS = (
    "id",
    "ts",
    "received_at",
    "agent_id",
    "type",
    "action_id",
    "incident_id",
    "agent_version",
    "prompt_version",
    "data",
    "source",
    "content_hash",
    "size_bytes",
    "batch_id",
    "batch_index",
)
SEAL_COLUMNS = (
    "seq",
    "batch_id",
    "event_count",
    "merkle_root",
    "prev_seal_hash",
    "seal_hash",
    "sealed_at",
    "source",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None, help="Default: 7 + the ledger's length")
    parser.add_argument("--commit-every", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=90, help="Spread over this many days.")
    args = parser.parse_args()
    django_setup(os.environ.get("DATABASE_URL", ""))

    from django.db import connection, transaction
    from django.utils import timezone

    from apps.audit.merkle import merkle_root
    from apps.audit.models import LedgerHead, LedgerSeal
    from apps.audit.services.derived import daily_counts_rebuild
    from apps.audit.services.ingest import ALL_TYPES, EventPreparer, agent_lookup_cache
    from apps.audit.services.ledger import GENESIS_HASH, seal_hash_compute
    from apps.demo.generator import DEMO_AGENTS, DemoFleetGenerator
    from apps.demo.services import demo_fleet_seed

    demo_fleet_seed(days=1, incidents_per_day=1, with_people=False)
    lookup = agent_lookup_cache()
    # Warm the agent cache now: no query may run on the connection while COPY streams.
    for spec in DEMO_AGENTS:
        lookup(spec.slug)
    preparers = {
        source: EventPreparer(
            source=source,
            token_agent=None,
            allowed_types=ALL_TYPES,
            agents_by_slug=lookup,
            now=datetime(2100, 1, 1, tzinfo=UTC),
        )
        for source in ("api", "opsdash")
    }
    existing = LedgerHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0
    # A fresh seed when appending, or the same events (same ids) would be generated again.
    base_seed = args.seed if args.seed is not None else 7 + existing
    per_day = max(1.0, args.events / args.days / 14)

    def day_batches():
        # More passes over the same period, with other seeds, until enough events are made.
        for extra_seed in range(1000):
            generator = DemoFleetGenerator(
                anchor=timezone.now(),
                seed=base_seed + extra_seed,
                days=args.days,
                incidents_per_day=per_day,
            )
            yield from generator.batches_by_day()

    head = LedgerHead.objects.filter(pk=1).first()
    seq, prev = (head.seq, head.seal_hash) if head else (0, GENESIS_HASH)
    now = timezone.now()

    def batches():
        """Lists of (prepared event, source) of --batch events each, one source per batch."""
        pending: dict[str, list] = {"api": [], "opsdash": []}
        for day in day_batches():
            for source, items in (("api", day.agent_events), ("opsdash", day.opsdash_events)):
                for raw in items:
                    pending[source].append(preparers[source].prepare(0, raw))
                    if len(pending[source]) >= args.batch:
                        yield source, pending[source]
                        pending[source] = []

    def write_chunk(chunk: list) -> None:
        """One transaction: the chunk's events, their seals, and the new ledger head."""
        nonlocal seq, prev
        seals = []
        with transaction.atomic():
            connection.ensure_connection()
            raw_conn = connection.connection
            with raw_conn.cursor().copy(
                f"COPY audit_event ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
            ) as copy:
                for source, rows in chunk:
                    batch_id = uuid.uuid4()
                    for index, prepared in enumerate(rows):
                        copy.write_row(
                            (
                                prepared.event_id,
                                prepared.ts,
                                now,
                                prepared.agent.pk,
                                prepared.event_type,
                                prepared.action_id,
                                prepared.incident_id,
                                prepared.agent_version,
                                prepared.prompt_version,
                                prepared.data_json,
                                source,
                                prepared.content_hash,
                                prepared.size_bytes,
                                batch_id,
                                index,
                            )
                        )
                    seq += 1
                    root = merkle_root([r.content_hash for r in rows])
                    seal = seal_hash_compute(
                        seq=seq,
                        batch_id=batch_id,
                        event_count=len(rows),
                        root=root,
                        prev_seal_hash=prev,
                        sealed_at=now,
                        source=source,
                    )
                    seals.append((seq, batch_id, len(rows), root, prev, seal, now, source))
                    prev = seal
            with raw_conn.cursor().copy(
                f"COPY audit_ledgerseal ({', '.join(SEAL_COLUMNS)}) FROM STDIN"
            ) as copy:
                for row in seals:
                    copy.write_row(row)
            LedgerHead.objects.update_or_create(pk=1, defaults={"seq": seq, "seal_hash": prev})

    written = 0
    started = time.perf_counter()
    chunk: list = []
    for source, rows in batches():
        chunk.append((source, rows))
        written += len(rows)
        if sum(len(r) for _, r in chunk) >= args.commit_every or written >= args.events:
            write_chunk(chunk)
            chunk = []
            rate = written / (time.perf_counter() - started)
            print(f"  {written:,} events committed ({rate:,.0f}/s)", flush=True)
        if written >= args.events:
            break
    elapsed = time.perf_counter() - started
    print(
        f"wrote {written:,} events in {seq - existing:,} sealed batches in {elapsed:.1f} s "
        f"({written / elapsed:,.0f} events/s); ledger head #{LedgerSeal.objects.order_by('-seq').first().seq}"
    )
    t0 = time.perf_counter()
    daily_counts_rebuild()
    print(f"daily counts rebuilt in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
