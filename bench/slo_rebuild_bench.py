"""`rebuild_rollups` over millions of stored events: incidents, SLI facts and every SLO's rollups.

    DATABASE_URL=postgres://…/postgres python bench/slo_rebuild_bench.py --events 10000000

Builds (or, with --reuse, keeps) a scratch database of demo-mix events written by
bulk_generate.py, folds the Action read model for the actions bulk_generate left unfolded (the
real ingest folds them as it goes; that is not what is timed here), defines a sensible set of
SLOs, then times `rollups_rebuild_all()` — what `manage.py rebuild_rollups` runs.

Target (DESIGN.md): a full recompute over 10 M events ≤ 30 s on PostgreSQL.
"""

import argparse
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import django_setup, postgres_settings, scratch_database  # noqa: E402

TARGET_SECONDS = 30.0
TARGET_EVENTS = 10_000_000


def database_url(name: str, *, reuse: bool) -> str:
    """The scratch database's URL; dropped and created afresh unless reused."""
    from urllib.parse import urlparse

    base = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    if reuse:
        import psycopg

        with psycopg.connect(base._replace(path="/postgres").geturl(), autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if found:
            return base._replace(path=f"/{name}").geturl()
    return scratch_database(name)


def stored_events() -> int:
    from django.db.models import Sum

    from apps.audit.models import LedgerSeal

    return int(LedgerSeal.objects.aggregate(n=Sum("event_count"))["n"] or 0)


def grow_to(url: str, events: int) -> None:
    """Appends demo-mix events with bulk_generate.py until `events` are stored."""
    missing = events - stored_events()
    if missing <= 0:
        return
    print(f"generating {missing:,} events with bulk_generate.py …", flush=True)
    subprocess.run(
        [sys.executable, str(HERE / "bulk_generate.py"), "--events", str(missing)],
        env=dict(os.environ, DATABASE_URL=url),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def fold_missing_actions() -> int:
    """Folds the Action rows of events bulk_generate wrote without folding, with the read
    model's own fold rule (order-independent), one action at a time in action_id order."""
    from django.db import transaction
    from django.db.models import Exists, OuterRef
    from django.utils import timezone

    from apps.actions.models import Action
    from apps.actions.services import (
        FOLDED_TYPES,
        ActionFact,
        _fold,
        derive_policy_violation,
        derive_status,
    )
    from apps.audit.models import Event

    rows = (
        Event.objects.filter(type__in=FOLDED_TYPES, action_id__isnull=False)
        .filter(~Exists(Action.objects.filter(action_id=OuterRef("action_id"))))
        .order_by("action_id")
        .values_list(
            "id",
            "ts",
            "agent_id",
            "type",
            "action_id",
            "incident_id",
            "agent_version",
            "prompt_version",
            "data",
        )
    )
    now = timezone.now()
    pending: list[Action] = []
    current: Action | None = None
    folded = 0
    with transaction.atomic():
        for event_id, ts, agent_id, kind, action_id, incident_id, av, pv, data in rows.iterator(
            chunk_size=20000
        ):
            if current is None or current.action_id != action_id:
                if current is not None:
                    pending.append(current)
                current = Action(action_id=action_id, agent_id=agent_id, updated_at=now)
            fact = ActionFact(
                str(event_id), ts, agent_id, kind, action_id, incident_id, av, pv, data
            )
            _fold(current, fact)
            if len(pending) >= 5000:
                folded += _save(pending, derive_status, derive_policy_violation)
        if current is not None:
            pending.append(current)
        folded += _save(pending, derive_status, derive_policy_violation)
    return folded


def _save(pending: list, derive_status: object, derive_policy_violation: object) -> int:
    from apps.actions.models import Action

    for action in pending:
        action.status = derive_status(action)  # type: ignore[operator]
        action.policy_violation = derive_policy_violation(action)  # type: ignore[operator]
    Action.objects.bulk_create(pending, batch_size=5000)
    n = len(pending)
    pending.clear()
    return n


def ensure_slos() -> int:
    """A sensible SLO set: each SLI kind over all agents and per team, and two canaries."""
    from apps.fleet.models import Agent, Team
    from apps.slo.models import Slo

    kinds = {
        "time_to_propose": Decimal("300"),
        "acceptance": None,
        "rollback": None,
        "accuracy": None,
        "recall": None,
    }
    for kind, threshold in kinds.items():
        slug = kind.replace("_", "-")
        Slo.objects.get_or_create(
            slug=f"{slug}-all",
            defaults={
                "name": f"{kind} (all)",
                "sli": kind,
                "objective": Decimal("0.95"),
                "threshold": threshold,
            },
        )
        for team in Team.objects.all():
            Slo.objects.get_or_create(
                slug=f"{slug}-{team.slug}",
                defaults={
                    "name": f"{kind} ({team.slug})",
                    "sli": kind,
                    "scope": "team",
                    "team": team,
                    "objective": Decimal("0.95"),
                    "threshold": threshold,
                },
            )
    agent = Agent.objects.order_by("slug").first()
    for kind in ("accuracy", "rollback"):
        Slo.objects.get_or_create(
            slug=f"{kind}-canary",
            defaults={
                "name": f"{kind} canary",
                "sli": kind,
                "scope": "agent",
                "agent": agent,
                "agent_version": "2.0.0",
                "objective": Decimal("0.95"),
            },
        )
    return Slo.objects.count()


def prepare_volume(name: str, events: int, *, reuse: bool) -> str:
    """A database holding `events` demo events with folded actions and SLOs; returns its URL."""
    url = database_url(name, reuse=reuse)
    django_setup(url)
    grow_to(url, events)
    t0 = time.perf_counter()
    folded = fold_missing_actions()
    if folded:
        print(f"folded {folded:,} actions in {time.perf_counter() - t0:.1f} s (setup, not timed)")
    ensure_slos()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=TARGET_EVENTS)
    parser.add_argument("--db", default=None, help="Scratch database name (default per size).")
    parser.add_argument("--reuse", action="store_true", help="Keep the database if it exists.")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    name = args.db or f"opsdash_slo_{args.events}"
    prepare_volume(name, args.events, reuse=args.reuse)

    from django.db import connection

    from apps.slo.rebuild import rollups_rebuild_all

    def report_line(label: str, report: object, times: list[float]) -> None:
        best = min(times)
        scaled = best * TARGET_EVENTS / stored
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in report.phases.items())  # type: ignore[attr-defined]
        print(
            f"rebuild_rollups {label}: best {best:.2f} s of {len(times)} "
            f"({', '.join(f'{t:.2f}' for t in times)}; last by step: {steps}); "
            f"linear estimate at {TARGET_EVENTS:,} events: {scaled:.1f} s "
            f"(target ≤ {TARGET_SECONDS:.0f} s{'' if scaled <= TARGET_SECONDS else ', OVER'})",
            flush=True,
        )

    print(postgres_settings(), flush=True)
    stored = stored_events()
    # From empty tables (a new database, the first rebuild after an upgrade): every row written.
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE actions_incident, slo_slifact, slo_slorollup")
        cursor.execute("VACUUM ANALYZE")  # fresh statistics, as a long-running database has
    t0 = time.perf_counter()
    report = rollups_rebuild_all()
    empty = time.perf_counter() - t0
    print(
        f"{stored:,} events stored: rebuild_rollups rebuilt {report.incidents:,} incidents, "
        f"{report.facts:,} facts and {report.rollups:,} rollups of {report.slos} SLOs"
    )
    report_line("from empty tables", report, [empty])
    # Over the tables the consumer keeps (the usual case): recomputed in full, written by
    # difference.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE actions_incident, slo_slifact, slo_slorollup")
    times = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        report = rollups_rebuild_all()
        times.append(time.perf_counter() - t0)
    report_line("over kept tables", report, times)


if __name__ == "__main__":
    main()
