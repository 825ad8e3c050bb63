"""POST /api/v1/gate at a fixed rate over loopback: p50/p99 vs GET /api/v1/limits at the same rate.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/gate_bench.py

The agent is covered by two budgets (its own daily LLM cap and the fleet's monthly one), so
every call is weighed against both, locks them and holds a reservation; the caps are high
enough that every call is allowed. Target (DESIGN.md): p99 <= 5 ms at 300 req/s.
"""

import argparse
import gc
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from actions_bench import paced
from common import django_setup, pct, postgres_settings, production_server, scratch_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=10, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--ingest",
        type=int,
        default=0,
        metavar="N",
        help="meanwhile, the agent's llm_call events arrive through POST /api/v1/events, N a "
        "second in batches of N/10, counted in the same two budgets (0: no ingest)",
    )
    args = parser.parse_args()
    url = scratch_database("opsdash_gate_bench")
    django_setup(url)
    from django.db import connection

    from apps.budgets.services import budget_create
    from apps.fleet.models import Agent, Team
    from apps.fleet.services import agent_token_mint

    team = Team.objects.create(slug="platform", name="Platform")
    agent = Agent.objects.create(slug="triage-bot", team=team)
    budget_create(
        slug="agent-day",
        name="Agent per day",
        scope="agent",
        agent=agent,
        measure="llm_usd",
        period="daily",
        cap=Decimal("1000000"),
    )
    budget_create(
        slug="fleet-month",
        name="Fleet per month",
        scope="global",
        measure="llm_usd",
        period="monthly",
        cap=Decimal("10000000"),
    )
    _, token = agent_token_mint(
        agent=agent, scopes=["gate:check", "events:write"], ttl=timedelta(days=1)
    )
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")  # the set-up's writes, flushed before the measurement
    print(postgres_settings(), flush=True)
    port = 8767
    server = production_server(port, DATABASE_URL=url)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "kind": "llm_call",
        "model": "claude-sonnet-4-5",
        "input_tokens": 1800,
        "max_tokens": 1024,
    }
    gc.collect()
    gc.freeze()
    base_all: list[float] = []
    lat_all: list[float] = []
    try:
        paced(
            f"{base}/api/v1/gate",
            rate=args.rate,
            seconds=3,
            make_body=lambda i: body,
            headers=headers,
        )
        feeder = _Feeder(base, headers, args.ingest) if args.ingest else None
        for round_no in range(args.rounds):
            base_lat = paced(
                f"{base}/api/v1/limits",
                rate=args.rate,
                seconds=args.seconds,
                make_body=lambda i: None,
                headers={},
            )
            lat = paced(
                f"{base}/api/v1/gate",
                rate=args.rate,
                seconds=args.seconds,
                make_body=lambda i: body,
                headers=headers,
            )
            print(
                f"round {round_no + 1}: GET /limits p50 {pct(base_lat, 0.5):.1f} ms p99 "
                f"{pct(base_lat, 0.99):.1f} ms | POST /gate p50 {pct(lat, 0.5):.1f} ms "
                f"p99 {pct(lat, 0.99):.1f} ms",
                flush=True,
            )
            base_all.extend(base_lat)
            lat_all.extend(lat)
            time.sleep(1)
        if feeder is not None:
            feeder.stop()
            print(feeder.summary(), flush=True)
    finally:
        server.terminate()
        server.wait()
    base_all.sort()
    lat_all.sort()
    print(
        f"GET /api/v1/limits (baseline): {len(base_all)} requests at {args.rate:.0f}/s  "
        f"p50 {pct(base_all, 0.5):.1f} ms  p99 {pct(base_all, 0.99):.1f} ms"
    )
    print(
        f"POST /api/v1/gate            : {len(lat_all)} requests at {args.rate:.0f}/s  "
        f"p50 {pct(lat_all, 0.5):.1f} ms  p99 {pct(lat_all, 0.99):.1f} ms  "
        f"({pct(lat_all, 0.99) / pct(base_all, 0.99):.1f}x baseline p99; target p99 <= 5 ms)"
    )


class _Feeder:
    """The agent's llm_call events, posted in batches ten times a second on a thread of its
    own while the gate is measured: each batch locks the budgets' rows while it counts."""

    def __init__(self, base: str, headers: dict[str, str], per_second: int) -> None:
        import http.client
        import json
        import threading
        import uuid
        from datetime import UTC, datetime
        from urllib.parse import urlsplit

        self.batch = max(per_second // 10, 1)
        self.sent = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        parsed = urlsplit(base)

        def run() -> None:
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
            due = time.perf_counter()
            while not self._stop.is_set():
                now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
                items = [
                    {
                        "id": str(uuid.uuid4()),
                        "ts": now,
                        "agent": "triage-bot",
                        "type": "llm_call",
                        "data": {
                            "model": "claude-sonnet-4-5",
                            "input_tokens": 1800,
                            "output_tokens": 400,
                            "latency_ms": 1200,
                        },
                    }
                    for _ in range(self.batch)
                ]
                start = time.perf_counter()
                conn.request(
                    "POST",
                    "/api/v1/events",
                    body=json.dumps(items).encode(),
                    headers={**headers, "Content-Type": "application/json"},
                )
                response = conn.getresponse()
                text = response.read()
                self.latencies.append((time.perf_counter() - start) * 1000)
                if response.status >= 400:
                    self.errors.append(f"{response.status} {text[:200]!r}")
                else:
                    self.sent += self.batch
                due += 0.1
                self._stop.wait(max(due - time.perf_counter(), 0))
            conn.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        self.latencies.sort()
        errors = f", {len(self.errors)} errors (first: {self.errors[0]})" if self.errors else ""
        return (
            f"meanwhile ingested {self.sent:,} llm_call events in batches of {self.batch}: "
            f"POST /api/v1/events p50 {pct(self.latencies, 0.5):.1f} ms p99 "
            f"{pct(self.latencies, 0.99):.1f} ms{errors}"
        )


if __name__ == "__main__":
    main()
