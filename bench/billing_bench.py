"""Billing import: FOCUS CSV rows/s against a bare `csv.reader` pass, and the import's peak RSS.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/billing_bench.py --mb 50

Generates a FOCUS 1.0 CSV of --mb megabytes (default 1 GB: the design's target is ≤ 300 MB
RSS for it), times one `csv.reader` pass over it, then runs `manage.py import_billing` in a
child process and reads that child's peak RSS (ru_maxrss). It runs in a scratch database
next to DATABASE_URL's (`--use-database-url` to import into DATABASE_URL's own, migrated,
instead); the rows it wrote are deleted afterwards. Import rate is measured from the import row's own start and finish times (no
interpreter start-up), and end to end.
"""

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, django_setup, scratch_database

HEADER = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "EffectiveCost",
    "ListCost",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "ResourceId",
    "ServiceName",
    "SkuId",
    "SubAccountId",
    "Tags",
]
SERVICES = [
    ("Amazon EC2", "Hours", "i-"),
    ("Amazon S3", "GB-Mo", "arn:aws:s3:::bucket-"),
    ("Amazon RDS", "Hours", "arn:aws:rds:us-east-1:111111111111:db:db-"),
    ("AWS Lambda", "Requests", "arn:aws:lambda:us-east-1:111111111111:function:fn-"),
]
AGENTS = ["triage-bot", "k8s-healer", "cost-sweeper", "log-summariser", ""]
TEAMS = ["platform", "payments", "data", "ml"]


def write_focus_csv(path: Path, megabytes: float, seed: int = 7) -> int:
    """Hourly usage rows for one month, until the file reaches the size; returns rows."""
    rng = random.Random(seed)
    target = int(megabytes * 1024 * 1024)
    rows = 0
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        while out.tell() < target:
            batch = []
            for _ in range(2000):
                service, unit, prefix = SERVICES[rows % len(SERVICES)]
                hour = rows % (30 * 24)
                day, hh = divmod(hour, 24)
                start = f"2026-10-{day + 1:02d}T{hh:02d}:00:00Z"
                end = f"2026-10-{day + 1:02d}T{hh:02d}:59:59Z"
                cost = f"{rng.randrange(1, 10**9) / 10**7:.7f}"
                agent = AGENTS[rows % len(AGENTS)]
                tags = {"team": TEAMS[rows % len(TEAMS)], "env": "prod"}
                if agent:
                    tags["opsdash-agent"] = agent
                batch.append(
                    [
                        cost,
                        "acct-bench",
                        "Bench account",
                        "USD",
                        "2026-11-01T00:00:00Z",
                        "2026-10-01T00:00:00Z",
                        "Usage",
                        f"{service} usage in us-east-1",
                        end,
                        start,
                        f"{rng.randrange(1, 100000) / 100:.2f}",
                        unit,
                        cost,
                        cost,
                        "AWS",
                        "AWS",
                        "us-east-1",
                        f"{prefix}{rows % 50000:08x}",
                        service,
                        f"SKU-{rows % 97:04d}",
                        "111111111111",
                        json.dumps(tags, separators=(",", ":")),
                    ]
                )
                rows += 1
            writer.writerows(batch)
    return rows


def to_parquet(source: Path, target: Path) -> None:
    """The CSV as Parquet, streamed (costs become doubles, as CUR 2.0 writes them)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    reader = pacsv.open_csv(source, read_options=pacsv.ReadOptions(block_size=8 << 20))
    with pq.ParquetWriter(target, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)


def csv_pass(path: Path) -> tuple[int, float]:
    started = time.perf_counter()
    rows = 0
    with path.open(newline="", encoding="utf-8") as source:
        for _ in csv.reader(source):
            rows += 1
    return rows - 1, time.perf_counter() - started


def run_import(path: Path, database_url: str) -> tuple[float, int, str]:
    """Runs the import in a grandchild, so the peak RSS read is that import's alone."""
    probe = (
        "import resource, subprocess, sys;"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
        "print(r.returncode);"
        "print((r.stdout + r.stderr).strip())"
    )
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            sys.executable,
            str(ROOT / "manage.py"),
            "import_billing",
            str(path),
            "--format",
            "focus",
            "--verbosity",
            "0",
        ],
        cwd=ROOT,
        env=dict(os.environ, DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - started
    peak_kb, code, summary = result.stdout.split("\n", 2)
    if code.strip() != "0":
        sys.exit(f"import failed: {summary}")
    return elapsed, int(peak_kb), summary.strip()


def bench_rules_ensure() -> None:
    from apps.billing.models import AllocationRule
    from apps.billing.rules import rule_create
    from apps.fleet.models import Agent, Team

    for slug in TEAMS:
        Team.objects.get_or_create(slug=slug, defaults={"name": slug})
    for n, slug in enumerate(a for a in AGENTS if a):
        Agent.objects.get_or_create(
            slug=slug, defaults={"team": Team.objects.get(slug=TEAMS[n % 3]), "name": slug}
        )
    if AllocationRule.objects.exists():
        return
    for data in (
        {"name": "Agent tag", "kind": "tag", "tag_key": "opsdash-agent", "target": "agent"},
        {
            "name": "Shared Lambda",
            "kind": "shared",
            "match_service": "AWS Lambda",
            "split": "actions",
        },
        {"name": "Team tag", "kind": "tag", "tag_key": "team", "target": "team"},
    ):
        rule_create(data=data, user=None)


def time_energy_estimate(import_id: int) -> float:
    """The import's energy step on its own: its rows' estimates deleted, then written again."""
    from django.db import connection

    from apps.billing.models import CostLineItem
    from apps.costs.energy_services import KEY_FIELDS, cloud_energy_compute

    # The importer gathers these while it reads the rows.
    items = CostLineItem.objects.filter(billing_import_id=import_id).order_by()
    keys = set(items.values_list(*KEY_FIELDS).distinct())
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM costs_cloudenergy WHERE line_item_id IN "
            "(SELECT id FROM billing_costlineitem WHERE billing_import_id = %s)",
            [import_id],
        )
    started = time.perf_counter()
    cloud_energy_compute(import_id=import_id, fresh=True, keys=keys)
    return time.perf_counter() - started


_ALLOCATED: dict[int, int] = {}


def delete_import(imp: Any) -> None:
    """Removes the import and everything hanging off its rows, counting its allocations."""
    from django.db import connection

    sub = "(SELECT id FROM billing_costlineitem WHERE billing_import_id = %s)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM billing_costallocation WHERE line_item_id IN {sub}", [imp.pk]
        )
        _ALLOCATED[imp.pk] = cursor.fetchone()[0]
        cursor.execute(f"DELETE FROM billing_costallocation WHERE line_item_id IN {sub}", [imp.pk])
        cursor.execute(f"DELETE FROM costs_cloudenergy WHERE line_item_id IN {sub}", [imp.pk])
        cursor.execute("DELETE FROM billing_costlineitem WHERE billing_import_id = %s", [imp.pk])
    imp.delete()


def allocations_of(import_id: int) -> int:
    return _ALLOCATED.get(import_id, 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=1024.0, help="file size in MB (1 GB)")
    parser.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "opsdash-billing-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    parser.add_argument("--use-database-url", action="store_true")
    parser.add_argument("--parquet", action="store_true", help="also import it as Parquet")
    parser.add_argument(
        "--rules",
        action="store_true",
        help="allocate with the teams, agents and rules of a typical setup (two tag rules, "
        "one shared split by actions); without it no rule matches and every row is unallocated",
    )
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL to a PostgreSQL database (the import uses COPY there).")
    if not args.use_database_url:
        database_url = scratch_database("opsdash_billing_bench")
    django_setup(database_url)

    from apps.billing.models import BillingImport

    if args.rules:
        bench_rules_ensure()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"focus-{args.mb:g}mb.csv"
    started = time.perf_counter()
    rows = write_focus_csv(path, args.mb)
    size_mb = path.stat().st_size / 1024 / 1024
    print(
        f"generated {path} ({size_mb:.1f} MB, {rows:,} rows) in {time.perf_counter() - started:.1f} s"
    )

    read_rows, read_seconds = csv_pass(path)
    print(
        f"csv.reader pass: {read_rows:,} rows in {read_seconds:.2f} s = {read_rows / read_seconds:,.0f} rows/s"
    )

    latest = BillingImport.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    wall, peak_kb, summary = run_import(path, database_url)
    imp = BillingImport.objects.filter(pk__gt=latest, file_name=path.name).get()
    assert imp.finished_at and imp.started_at
    inner = (imp.finished_at - imp.started_at).total_seconds()
    print(summary)
    print(
        f"import: {imp.rows_imported:,} rows in {inner:.2f} s = {imp.rows_imported / inner:,.0f} rows/s "
        f"({wall:.2f} s end to end, with interpreter and Django start-up)"
    )
    ratio = (imp.rows_imported / inner) / (read_rows / read_seconds)
    print(f"ratio import / csv.reader: {ratio:.1%}")
    print(f"peak RSS of the import process: {peak_kb / 1024:.0f} MB (target for 1 GB: <= 300 MB)")
    energy_seconds = time_energy_estimate(imp.pk)
    print(
        f"energy estimate (in the import's transaction): {energy_seconds:.2f} s = "
        f"{energy_seconds / inner:.1%} of the import's {inner:.2f} s"
    )
    imported = imp.pk
    delete_import(imp)
    print(f"allocations written: {allocations_of(imported):,}")
    if args.parquet:
        parquet = path.with_suffix(".parquet")
        to_parquet(path, parquet)
        latest = BillingImport.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        wall, peak_kb, summary = run_import(parquet, database_url)
        imp = BillingImport.objects.filter(pk__gt=latest, file_name=parquet.name).get()
        assert imp.finished_at and imp.started_at
        inner = (imp.finished_at - imp.started_at).total_seconds()
        print(
            f"Parquet ({parquet.stat().st_size / 1024 / 1024:.1f} MB): {imp.rows_imported:,} rows "
            f"in {inner:.2f} s = {imp.rows_imported / inner:,.0f} rows/s, peak RSS "
            f"{peak_kb / 1024:.0f} MB, totals {imp.totals}"
        )
        delete_import(imp)
        if not args.keep:
            parquet.unlink()
    if not args.keep:
        path.unlink()


if __name__ == "__main__":
    main()
