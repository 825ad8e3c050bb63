"""Batch ingest over HTTP into PostgreSQL vs a raw COPY of the same rows into the same table.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/ingest_bench.py [--events N]

Creates a scratch database `opsdash_bench`, serves opsdash with its production configuration
(gunicorn, gthread), posts the demo fleet's event mix in batches of 1,000 from client threads,
then truncates the table and COPYs the very rows it stored. Prints events/s and the ratio.
"""

import argparse
import io
import os
import statistics
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from common import production_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0, help="0: the production config's")
    parser.add_argument("--threads", type=int, default=0, help="0: the production config's")
    args = parser.parse_args()

    base = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    if base.scheme not in ("postgres", "postgresql"):
        sys.exit("The ingest benchmark needs DATABASE_URL to point at PostgreSQL.")
    import psycopg

    admin_url = base._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS opsdash_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE opsdash_bench")
    bench_url = base._replace(path="/opsdash_bench").geturl()
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsdash.settings")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789")
    os.environ.setdefault("PII_HMAC_KEY", "bench-pii-key-not-for-production-0123456789")
    os.environ["CELERY_BROKER_URL"] = os.environ.get(
        "BENCH_BROKER_URL", "redis://127.0.0.1:6379/13"
    )

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from apps.demo.generator import DEMO_AGENTS, DemoFleetGenerator
    from apps.demo.services import demo_fleet_seed
    from apps.fleet.models import Agent
    from apps.fleet.services import agent_token_mint

    demo_fleet_seed(days=1, incidents_per_day=1, with_people=False)
    tokens = {
        a.slug: agent_token_mint(agent=a, scopes=["events:write"], ttl=None)[1]
        for a in Agent.objects.filter(slug__in=[d.slug for d in DEMO_AGENTS])
    }

    print(f"generating {args.events:,} events of the demo mix …", flush=True)
    per_agent: dict[str, list[bytes]] = defaultdict(list)
    generator = DemoFleetGenerator(
        anchor=datetime.now(UTC), seed=99, days=400, incidents_per_day=30
    )
    total = 0
    import msgspec

    for day in generator.batches_by_day():
        for raw in day.agent_events:
            slug = msgspec.json.decode(raw)["agent"]
            per_agent[slug].append(raw)
            total += 1
        if total >= args.events:
            break
    bodies = []
    mix = defaultdict(int)
    size = 0
    for slug, items in per_agent.items():
        for start in range(0, len(items), args.batch):
            chunk = items[start : start + args.batch]
            bodies.append((tokens[slug], b"[" + b",".join(chunk) + b"]", len(chunk)))
            size += sum(len(c) for c in chunk)
            for c in chunk:
                mix[msgspec.json.decode(c)["type"]] += 1
    print(
        f"{total:,} events, {size / total:.0f} B/event on average, mix: "
        + ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(mix.items())),
        flush=True,
    )

    port = 8765
    server_env = dict(os.environ, WEB_BIND=f"127.0.0.1:{port}", WEB_ACCESS_LOG="/dev/null")
    if args.workers:
        server_env["WEB_WORKERS"] = str(args.workers)
    if args.threads:
        server_env["WEB_THREADS"] = str(args.threads)
    extra = {k: v for k, v in server_env.items() if k in ("WEB_WORKERS", "WEB_THREADS")}
    server = production_server(port, **extra)
    import runpy

    saved_env = dict(os.environ)
    os.environ.update(server_env)
    config = runpy.run_path(str(ROOT / "opsdash" / "gunicorn.conf.py"))
    os.environ.clear()
    os.environ.update(saved_env)

    import requests

    url = f"http://127.0.0.1:{port}/api/v1/events"
    latencies: list[float] = []
    accepted = 0
    lock = threading.Lock()
    queue = list(bodies)

    def client() -> None:
        nonlocal accepted
        session = requests.Session()
        while True:
            with lock:
                if not queue:
                    return
                token, body, _n = queue.pop()
            t0 = time.perf_counter()
            response = session.post(
                url,
                data=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                timeout=120,
            )
            elapsed = time.perf_counter() - t0
            result = response.json()
            with lock:
                latencies.append(elapsed)
                accepted += result["accepted"]
                if result["rejected"]:
                    print("rejected:", result["rejected"][:2])

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    server.terminate()
    server.wait()
    ours = accepted / wall

    # Baseline: the same rows, COPYed into the same (emptied) table in one transaction.
    with psycopg.connect(bench_url, autocommit=True) as conn:
        buffer = io.BytesIO()
        with conn.cursor().copy("COPY audit_event TO STDOUT") as copy:
            for chunk in copy:
                buffer.write(chunk)
        rows = conn.execute("SELECT count(*) FROM audit_event").fetchone()[0]
        conn.execute("TRUNCATE audit_event")
        data = buffer.getvalue()
        t0 = time.perf_counter()
        with conn.transaction(), conn.cursor().copy("COPY audit_event FROM STDIN") as copy:
            for start in range(0, len(data), 1 << 20):
                copy.write(
                    data[start : start + 1 << 20] if False else data[start : start + (1 << 20)]
                )
        copy_seconds = time.perf_counter() - t0
    copy_rate = rows / copy_seconds
    p50 = statistics.median(latencies) * 1000
    p99 = sorted(latencies)[int(len(latencies) * 0.99) - 1] * 1000 if len(latencies) > 1 else p50
    print(
        f"HTTP ingest: {accepted:,} events in {wall:.2f} s = {ours:,.0f} events/s "
        f"(batch {args.batch}, {args.clients} clients, gunicorn {config['workers']}x{config['threads']} gthread; "
        f"batch latency p50 {p50:.0f} ms, p99 {p99:.0f} ms)"
    )
    print(f"raw COPY:    {rows:,} rows in {copy_seconds:.2f} s = {copy_rate:,.0f} rows/s")
    print(f"ratio ours/COPY = {ours / copy_rate:.1%}  (targets: >= 10,000 events/s and >= 30 %)")


if __name__ == "__main__":
    main()
