"""Applying 1,000 new events to the SLOs with N1 and with N2 events already stored.

    DATABASE_URL=postgres://…/postgres python bench/slo_apply_bench.py --sizes 1000000 10000000

One scratch database grows from N1 to N2 events (bulk_generate.py, actions folded, SLOs
defined, facts and rollups rebuilt). At each size, each round ingests 1,000 new events through
the real ingest — 900 from the demo generator (new incidents and actions) and 100 late verdicts
on actions picked at random from the stored history, which move old facts and their incidents'
recall — and times the derived consumer "slo" applying that batch. Target (DESIGN.md): the cost
grows with the new events, not with the history, so the ratio N2/N1 stays near 1.
"""

import argparse
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import postgres_settings  # noqa: E402
from slo_rebuild_bench import prepare_volume, stored_events  # noqa: E402

NEW_EVENTS = 1000
LATE_VERDICTS = 100


def new_batch(rng: random.Random, round_no: int) -> list[bytes]:
    """1,000 events: fresh demo-fleet activity plus late verdicts on stored actions."""
    from apps.actions.models import Action
    from apps.audit.canonical import encode_json, format_ts
    from apps.demo.generator import DemoFleetGenerator

    generator = DemoFleetGenerator(
        anchor=datetime.now(UTC) - timedelta(minutes=5),
        seed=rng.randrange(1 << 30),
        days=2,
        incidents_per_day=40,
    )
    items: list[bytes] = []
    for day in generator.batches_by_day():
        items += [e for e in day.agent_events + day.opsdash_events if e]
    items = items[: NEW_EVENTS - LATE_VERDICTS]
    old = list(
        Action.objects.filter(proposed_at__isnull=False)
        .order_by("?")
        .values_list("action_id", "agent__slug")[:LATE_VERDICTS]
    )
    now = datetime.now(UTC) - timedelta(seconds=30)
    for action_id, agent in old:
        item = {
            "id": str(uuid.uuid4()),
            "ts": format_ts(now),
            "agent": agent,
            "type": "verdict",
            "action_id": action_id,
            "data": {"correct": rng.random() < 0.7, "by": f"bench-{round_no}"},
        }
        items.append(encode_json(item))
    return items


def measure(rounds: int, rng: random.Random, *, profile: bool = False) -> list[float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.audit.models import EventSource
    from apps.audit.services.derived import derived_catch_up
    from apps.audit.services.ingest import ALL_TYPES, agent_lookup_cache, event_batch_ingest
    from apps.slo.rebuild import rollups_rebuild_all

    rollups_rebuild_all()  # the consumer's cursor at the head: only the new batch is applied
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    times = []
    for round_no in range(rounds):
        items = new_batch(rng, round_no)
        result = event_batch_ingest(
            items=items,
            source=EventSource.IMPORT,
            allowed_types=ALL_TYPES,
            agents_by_slug=agent_lookup_cache(),
        )
        assert result.accepted == len(items), result.rejected[:3]
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            applied = derived_catch_up(names=["slo"])
            times.append(time.perf_counter() - t0)
        assert applied == 1, applied
        if profile and round_no == rounds - 1:
            slowest = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))
            for query in slowest[:8]:
                print(f"  {float(query['time']) * 1000:7.1f} ms  {query['sql'][:150]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[1_000_000, 10_000_000])
    parser.add_argument("--db", default="opsdash_slo_apply")
    parser.add_argument(
        "--db-per-size",
        action="store_true",
        help="One scratch database per size (opsdash_slo_<size>), each kept for --reuse, "
        "instead of one database grown from the smaller size to the larger.",
    )
    parser.add_argument("--reuse", action="store_true", help="Keep the database if it exists.")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--profile", action="store_true", help="Print the slowest statements of the last round."
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one size, one DB
    args = parser.parse_args()
    if args.db_per_size and args.one is None:
        # One process per size: Django holds one database connection per process.
        medians = []
        for size in sorted(args.sizes):
            command = [sys.executable, __file__, "--one", str(size), "--rounds", str(args.rounds)]
            command += ["--reuse"] * args.reuse + ["--profile"] * args.profile
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            print(out, end="", flush=True)
            medians.append(float(out.rsplit("MEDIAN ", 1)[1].split()[0]))
        _ratio(args.sizes, medians)
        return
    results = []
    sizes = [args.one] if args.one is not None else sorted(args.sizes)
    for size in sizes:
        if args.one is not None:
            prepare_volume(f"opsdash_slo_{size}", size, reuse=args.reuse)
        else:
            prepare_volume(args.db, size, reuse=args.reuse or bool(results))
        stored = stored_events()
        if size == sizes[0]:
            print(postgres_settings(), flush=True)
        # Seeded by what is stored: a rerun on a kept database writes new events, not repeats.
        rng = random.Random(stored)
        times = measure(args.rounds, rng, profile=args.profile)
        median = statistics.median(times)
        results.append(median)
        print(
            f"{stored:,} events stored: applying {NEW_EVENTS:,} new events takes "
            f"median {median * 1000:.0f} ms over {args.rounds} rounds "
            f"({', '.join(f'{t * 1000:.0f}' for t in times)} ms)",
            flush=True,
        )
    if args.one is not None:
        print(f"MEDIAN {results[0]}")
    else:
        _ratio(args.sizes, results)


def _ratio(sizes: list[int], medians: list[float]) -> None:
    small, large = sorted(sizes)
    print(f"ratio {large:,} / {small:,}: {medians[1] / medians[0]:.2f}x")


if __name__ == "__main__":
    main()
