"""`make bench`: every benchmark, each printing its figure against a baseline from the same run.

Needs PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres) and Redis.
"""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    ("PII scrubbing vs one pass over the text", ["scrub_bench.py"]),
    (
        "HTTP batch ingest vs raw COPY",
        [
            "ingest_bench.py",
            "--events",
            "60000",
            "--workers",
            "3",
            "--threads",
            "2",
            "--clients",
            "8",
        ],
    ),
    ("import_events peak memory, 100k vs 1M lines", ["import_memory.py"]),
    ("import_billing: 1 GB FOCUS CSV vs a csv.reader pass, peak RSS", ["billing_bench.py"]),
    ("policy decision with 200 rules vs one rule", ["policy_bench.py"]),
    ("POST /api/v1/actions at 200 req/s vs GET /api/v1/limits", ["actions_bench.py"]),
    ("POST /api/v1/gate at 300 req/s vs GET /api/v1/limits", ["gate_bench.py"]),
    ("ingest with 14 budgets counting vs none (the counter update)", ["budget_ingest_bench.py"]),
    ("approval queue page, 5,000 pending vs /healthz and its bare SQL", ["queue_bench.py"]),
    ("SLO list page with 200 SLOs vs /healthz", ["slo_list_bench.py"]),
    ("SLO update: 1,000 new events with 1M vs 10M stored", ["slo_apply_bench.py"]),
    (
        "rebuild_rollups over 10M events vs the 30 s target",
        ["slo_rebuild_bench.py", "--db", "opsdash_slo_apply", "--reuse"],
    ),
]


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    failed = 0
    for title, argv in BENCHES:
        print(f"\n== {title} ==", flush=True)
        failed += (
            subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]], env=env).returncode
            != 0
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
