"""The SLO list with 200 SLOs, each with a status and a 60-point sparkline, behind the
production gunicorn: p50/p95 of the list page (full, filtered, the htmx fragment) and of one
SLO page, against /healthz in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/slo_list_bench.py

Target (issue 5): SLO list page p95 <= 300 ms with 200 SLOs.
"""

import argparse
import random
import statistics
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    django_setup,
    measure,
    pct,
    production_server,
    scratch_database,
    session_cookie,
)

TARGET_MS = 300
KINDS = ["acceptance", "rollback", "time_to_propose", "accuracy", "recall"]
STATES = ["ok"] * 6 + ["warning"] * 2 + ["critical", "no_data"]


def populate(*, slos: int, rollup_minutes: int) -> str:
    """Teams, agents, SLOs with statuses (as the evaluator writes them) and, for one SLO, a
    window of per-minute rollups for its page. Returns that SLO's slug."""
    from apps.fleet.models import Agent, Team
    from apps.slo.models import Slo, SloAlert, SloRollup, SloStatus

    rng = random.Random(5)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    teams = [Team.objects.create(slug=f"team-{i}", name=f"Team {i}") for i in range(5)]
    agents = [
        Agent.objects.create(slug=f"agent-{i}", team=teams[i % 5], autonomy_mode="suggest")
        for i in range(40)
    ]
    rows = []
    for i in range(slos):
        scope = ["agent", "agent", "team", "all"][i % 4]
        kind = KINDS[i % len(KINDS)]
        rows.append(
            Slo(
                slug=f"slo-{i:03d}",
                name=f"{kind} objective {i}",
                sli=kind,
                scope=scope,
                agent=agents[i % 40] if scope == "agent" else None,
                team=teams[i % 5] if scope == "team" else None,
                objective=Decimal(rng.choice(["0.9", "0.95", "0.99", "0.999"])),
                threshold=Decimal(300) if kind == "time_to_propose" else None,
                window_days=rng.choice([7, 28, 30]),
            )
        )
    Slo.objects.bulk_create(rows)
    statuses = []
    for slo in Slo.objects.all():
        state = rng.choice(STATES)
        has_data = state != "no_data"
        sli = Decimal(str(round(rng.uniform(0.85, 1.0), 6))) if has_data else None
        statuses.append(
            SloStatus(
                slo=slo,
                evaluated_at=now,
                window_start=now - timedelta(days=slo.window_days),
                good=rng.randint(100, 5000) if has_data else 0,
                total=rng.randint(5000, 6000) if has_data else 0,
                sli=sli,
                budget_remaining=Decimal(str(round(rng.uniform(-2, 1), 6))) if has_data else None,
                burn_rates={
                    w: round(rng.uniform(0, 20), 3)
                    for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
                },
                worst_burn_rate=Decimal(str(round(rng.uniform(0, 20), 4))) if has_data else None,
                state=state,
                sparkline=[
                    [
                        (now - timedelta(hours=60 - p)).isoformat(),
                        None
                        if not has_data or rng.random() < 0.05
                        else round(rng.uniform(0.85, 1), 4),
                    ]
                    for p in range(60)
                ],
            )
        )
    SloStatus.objects.bulk_create(statuses)
    page_slo = Slo.objects.get(slug="slo-000")
    SloRollup.objects.bulk_create(
        [
            SloRollup(
                slo=page_slo,
                minute=now - timedelta(minutes=m),
                good=(g := rng.randint(0, 10)),
                total=g + rng.choice([0, 0, 0, 1]),
            )
            for m in range(rollup_minutes)
        ],
        batch_size=5000,
    )
    for n in range(20):
        SloAlert.objects.create(
            slo=page_slo,
            severity="page",
            long_window="1h",
            short_window="5m",
            factor=Decimal("13.44"),
            started_at=now - timedelta(hours=10 * n + 5),
            resolved_at=now - timedelta(hours=10 * n + 4),
            peak_burn_rate=Decimal("15.2"),
            last_burn_rate=Decimal("3.1"),
        )
    return page_slo.slug


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slos", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument(
        "--rollup-minutes",
        type=int,
        default=28 * 24 * 60,
        help="per-minute rollups of the SLO whose page is measured (default: a full 28 d)",
    )
    args = parser.parse_args()
    url = scratch_database("opsdash_slo_list_bench")
    django_setup(url)
    slug = populate(slos=args.slos, rollup_minutes=args.rollup_minutes)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    cookie = session_cookie("bench-sre")

    import requests

    port = 8769
    server = production_server(port, DATABASE_URL=url)
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    headers = {"Cookie": cookie}
    try:
        first = session.get(f"{base}/slos/", headers=headers, timeout=10)
        tiles = first.text.count('class="slo-tile ')
        assert first.status_code == 200 and tiles == args.slos, (first.status_code, tiles)

        def page(path: str, **extra: str):
            def get() -> None:
                response = session.get(f"{base}{path}", headers={**headers, **extra}, timeout=10)
                assert response.status_code == 200, (path, response.status_code)

            return get

        pages = {
            "/healthz (baseline)": page("/healthz"),
            f"SLO list, {args.slos} tiles": page("/slos/"),
            "SLO list, one team": page("/slos/?team=team-1"),
            "SLO list, htmx fragment": page("/slos/?sli=rollback", **{"HX-Request": "true"}),
            "one SLO page (28 d rollups)": page(f"/slos/{slug}/"),
            "agent scorecard": page("/fleet/agents/agent-0/slos/"),
        }
        for get in pages.values():  # warm up every path and connection
            for _ in range(5):
                get()
        results = {name: measure(get, args.rounds) for name, get in pages.items()}
    finally:
        server.terminate()
        server.wait()

    print(
        f"{args.slos} SLOs with statuses and 60-point sparklines, {args.rollup_minutes:,} rollup "
        f"minutes on the measured SLO page; {args.rounds} sequential requests per page against "
        "gunicorn (production config)"
    )
    healthz = statistics.median(results["/healthz (baseline)"])
    over = 0
    for name, times in results.items():
        p50, p95 = statistics.median(times), pct(times, 0.95)
        flag = ""
        if name.startswith("SLO list") and p95 > TARGET_MS:
            flag = f"   <-- over {TARGET_MS} ms"
            over += 1
        print(
            f"{name:<32} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({p50 / healthz:5.1f}x /healthz){flag}"
        )
    print(f"target: SLO list page p95 <= {TARGET_MS} ms")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
