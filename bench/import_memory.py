"""Peak memory of `import_events` must stay flat as the file grows (100k vs 1M lines).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/import_memory.py

Writes JSONL files of the demo mix, imports each into a fresh scratch database in a child
process, and prints lines/s and the child's peak RSS; the ratio of the two peaks is the figure.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, django_setup, scratch_database


def write_jsonl(path: Path, lines: int) -> int:
    from apps.demo.generator import DemoFleetGenerator

    written = 0
    with path.open("wb") as out:
        for seed in range(10_000):
            generator = DemoFleetGenerator(
                anchor=datetime.now(UTC), seed=seed, days=60, incidents_per_day=40
            )
            for day in generator.batches_by_day():
                for raw in day.agent_events + day.opsdash_events:
                    out.write(raw + b"\n")
                    written += 1
                    if written >= lines:
                        return path.stat().st_size
    return path.stat().st_size


def run_import(path: Path, database_url: str) -> tuple[float, int, str]:
    """Runs the import in a grandchild, so the peak RSS measured is that import's alone."""
    env = dict(os.environ, DATABASE_URL=database_url, CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    probe = (
        "import resource, subprocess, sys;"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
        "print(r.stdout.strip())"
    )
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            sys.executable,
            str(ROOT / "manage.py"),
            "import_events",
            str(path),
            "--verbosity",
            "0",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - started
    peak_kb, _, summary = result.stdout.partition("\n")
    return elapsed, int(peak_kb), summary.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "opsdash-import-bench"))
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    peaks = []
    sizes = [int(x) for x in args.sizes.split(",")]
    for lines in sizes:
        url = scratch_database(f"opsdash_import_{lines}")
        if lines == sizes[0]:
            django_setup(url, migrate=False)
        from django.core.management import call_command
        from django.db import connections

        connections.close_all()
        connections["default"].settings_dict["NAME"] = f"opsdash_import_{lines}"
        call_command("migrate", verbosity=0)
        from apps.demo.services import demo_fleet_seed

        demo_fleet_seed(days=1, incidents_per_day=1, with_people=False)
        path = folder / f"events-{lines}.jsonl"
        size = write_jsonl(path, lines) if not path.exists() else path.stat().st_size
        connections.close_all()
        elapsed, peak_kb, summary = run_import(path, url)
        peaks.append(peak_kb)
        print(
            f"{lines:>9,} lines ({size / 1e6:,.0f} MB): {elapsed:6.1f} s, {lines / elapsed:,.0f} lines/s, "
            f"peak RSS {peak_kb / 1024:,.0f} MB   [{summary}]",
            flush=True,
        )
    if len(peaks) > 1:
        print(f"peak RSS ratio largest/smallest file = {peaks[-1] / peaks[0]:.2f} (flat = about 1)")


if __name__ == "__main__":
    main()
