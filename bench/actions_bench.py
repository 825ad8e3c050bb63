"""POST /api/v1/actions at a fixed rate over loopback: p50/p99 vs GET /api/v1/limits at the same rate.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/actions_bench.py

Target (DESIGN.md): p99 ≤ 20 ms at 200 req/s.
"""

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import django_setup, production_server, scratch_database


def paced(
    url: str, *, rate: float, seconds: float, make_body, headers: dict[str, str], threads: int = 16
) -> list[float]:
    """Sends `rate` requests per second for `seconds`, from a pool of threads; returns latencies (ms)."""
    import requests

    total = int(rate * seconds)
    start = time.perf_counter() + 0.5
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        session = requests.Session()
        for i in counter:
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            body = make_body(i)
            t0 = time.perf_counter()
            response = (
                session.post(url, json=body, headers=headers, timeout=10)
                if body is not None
                else session.get(url, headers=headers, timeout=10)
            )
            elapsed = (time.perf_counter() - t0) * 1000
            if response.status_code >= 400:
                print("error", response.status_code, response.text[:200])
            with lock:
                latencies.append(elapsed)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sorted(latencies)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    url = scratch_database("opsdash_actions_bench")
    django_setup(url)
    from apps.demo.services import demo_fleet_seed
    from apps.fleet.models import Agent
    from apps.fleet.services import agent_token_mint

    demo_fleet_seed(days=1, incidents_per_day=1, with_people=False)
    agent = Agent.objects.get(slug="k8s-healer")
    _, token = agent_token_mint(agent=agent, scopes=["actions:propose"], ttl=None)
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

    try:
        paced(
            f"{base}/api/v1/actions", rate=20, seconds=2, make_body=proposal, headers=headers
        )  # warm up
        base_lat = paced(
            f"{base}/api/v1/limits",
            rate=args.rate,
            seconds=args.seconds,
            make_body=lambda i: None,
            headers={},
        )
        lat = paced(
            f"{base}/api/v1/actions",
            rate=args.rate,
            seconds=args.seconds,
            make_body=proposal,
            headers=headers,
        )
    finally:
        server.terminate()
        server.wait()

    def pct(xs: list[float], q: float) -> float:
        return xs[max(int(len(xs) * q) - 1, 0)]

    print(
        f"GET /api/v1/limits  (baseline): {len(base_lat)} requests at {args.rate:.0f}/s  p50 {pct(base_lat, 0.5):.1f} ms  p99 {pct(base_lat, 0.99):.1f} ms"
    )
    print(
        f"POST /api/v1/actions          : {len(lat)} requests at {args.rate:.0f}/s  p50 {pct(lat, 0.5):.1f} ms  p99 {pct(lat, 0.99):.1f} ms  "
        f"({pct(lat, 0.99) / pct(base_lat, 0.99):.1f}x baseline p99; target p99 <= 20 ms)"
    )


if __name__ == "__main__":
    main()
