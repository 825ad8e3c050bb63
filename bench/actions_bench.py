"""POST /api/v1/actions at a fixed rate over loopback: p50/p99 vs GET /api/v1/limits at the same rate.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/actions_bench.py

Target (DESIGN.md): p99 ≤ 20 ms at 200 req/s.
"""

import argparse
import gc
import http.client
import json
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import django_setup, pct, postgres_settings, production_server, scratch_database


def paced(
    url: str, *, rate: float, seconds: float, make_body, headers: dict[str, str], threads: int = 16
) -> list[float]:
    """Sends `rate` requests per second for `seconds`, from a pool of threads; returns latencies (ms).

    The load comes from this same 2-core machine, so the client is kept as light as it can be
    (http.client on kept-alive connections: a third of the CPU of `requests`); what it still
    takes is CPU the server does not get, for the baseline and the measured endpoint alike.
    A request counts from the moment it was due, so a stalled client cannot hide a slow server
    (no coordinated omission).
    """
    parsed = urlsplit(url)
    total = int(rate * seconds)
    start = time.perf_counter() + 0.5
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        for i in counter:
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            body = make_body(i)
            if body is None:
                conn.request("GET", parsed.path, headers=headers)
            else:
                payload = json.dumps(body).encode()
                conn.request(
                    "POST",
                    parsed.path,
                    body=payload,
                    headers={**headers, "Content-Type": "application/json"},
                )
            response = conn.getresponse()
            text = response.read()
            elapsed = (time.perf_counter() - due) * 1000
            if response.status >= 400:
                with lock:
                    errors.append(f"{response.status} {text[:200]!r}")
            with lock:
                latencies.append(elapsed)
        conn.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        print(f"{len(errors)} errors, first: {errors[0]}")
    return sorted(latencies)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = scratch_database("opsdash_actions_bench")
    django_setup(url)
    from apps.demo.services import demo_fleet_seed
    from apps.fleet.models import Agent
    from apps.fleet.services import agent_token_mint

    demo_fleet_seed(days=1, incidents_per_day=1, with_people=False)
    agent = Agent.objects.get(slug="k8s-healer")
    _, token = agent_token_mint(agent=agent, scopes=["actions:propose"], ttl=None)
    # Every proposal counts in a budget, as in a fleet with a cap on actions (the demo's own
    # actions budget covers another team): the counter update is part of what is measured.
    from decimal import Decimal

    from apps.budgets.services import budget_create

    budget_create(
        slug="fleet-actions-day",
        name="Fleet actions per day",
        scope="global",
        measure="actions",
        period="daily",
        cap=Decimal(10_000_000),
    )
    # Flush what the set-up wrote (a new database, migrations, the seed): otherwise the next
    # checkpoint writes it out during the measurement, and its fsyncs stall commits for
    # hundreds of ms — the set-up's cost, not the API's (seen: p99 214 ms without, 12 ms with).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    print(postgres_settings(), flush=True)
    port = 8766
    server = production_server(port, DATABASE_URL=url)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    run = time.time_ns()

    def proposal(i: int) -> dict:
        return {
            "action_id": f"bench-{run}-{i}",
            "action_type": "k8s.restart_deployment",
            "target": f"k8s://prod/search/svc-{i % 50}",
            "env": "prod",
            "risk": "low",
            "confidence": 0.9,
            "rationale": "bench",
            "rollback_plan": "redeploy",
            "parameters": {"replicas": 3},
        }

    # The load generator shares the machine and imported Django to seed: freeze what it holds,
    # or its own full garbage collections (~150 ms) would be counted as server latency.
    gc.collect()
    gc.freeze()
    try:
        # Warm: every server thread has opened its database connection and planned its
        # statements (a server that has been up for a minute); these requests are not counted.
        paced(
            f"{base}/api/v1/actions",
            rate=args.rate,
            seconds=3,
            make_body=lambda i: proposal(10_000_000 + i),
            headers=headers,
        )
        paced(
            f"{base}/api/v1/limits", rate=args.rate, seconds=1, make_body=lambda i: None, headers={}
        )
        base_all: list[float] = []
        lat_all: list[float] = []
        for round_no in range(args.rounds):
            base_lat = paced(
                f"{base}/api/v1/limits",
                rate=args.rate,
                seconds=args.seconds,
                make_body=lambda i: None,
                headers={},
            )
            offset = round_no * 1_000_000
            lat = paced(
                f"{base}/api/v1/actions",
                rate=args.rate,
                seconds=args.seconds,
                make_body=lambda i, offset=offset: proposal(offset + i),
                headers=headers,
            )
            print(
                f"round {round_no + 1}: GET /limits p50 {pct(base_lat, 0.5):.1f} ms p99 "
                f"{pct(base_lat, 0.99):.1f} ms | POST /actions p50 {pct(lat, 0.5):.1f} ms "
                f"p99 {pct(lat, 0.99):.1f} ms"
            )
            base_all.extend(base_lat)
            lat_all.extend(lat)
    finally:
        server.terminate()
        server.wait()

    base_all.sort()
    lat_all.sort()
    print(
        f"GET /api/v1/limits  (baseline): {len(base_all)} requests at {args.rate:.0f}/s  "
        f"p50 {pct(base_all, 0.5):.1f} ms  p99 {pct(base_all, 0.99):.1f} ms"
    )
    print(
        f"POST /api/v1/actions          : {len(lat_all)} requests at {args.rate:.0f}/s  "
        f"p50 {pct(lat_all, 0.5):.1f} ms  p99 {pct(lat_all, 0.99):.1f} ms  "
        f"({pct(lat_all, 0.99) / pct(base_all, 0.99):.1f}x baseline p99; target p99 <= 20 ms)"
    )


if __name__ == "__main__":
    main()
