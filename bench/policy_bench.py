"""Policy decision in process with 200 rules: p50/p99 per decision vs a one-rule policy.

    python bench/policy_bench.py          (no database needed)

Target (DESIGN.md): p99 ≤ 1 ms with 200 rules.
"""

import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsdash.settings")
os.environ.setdefault("DEBUG", "1")

import django

django.setup()

from apps.policy.engine import CompiledPolicy, Proposal  # noqa: E402
from apps.policy.schema import policy_parse  # noqa: E402

DOMAINS = ["k8s", "db", "cloud", "queue", "certs", "dns", "cdn", "iam", "vm", "net"]
VERBS = [
    "restart",
    "scale",
    "rollback",
    "drop",
    "resize",
    "purge",
    "renew",
    "rotate",
    "cordon",
    "patch",
]
TEAMS = ["platform", "payments", "data", "search", "identity"]


def policy_yaml(rules: int, rng: random.Random) -> str:
    lines = [
        "runbooks: [" + ", ".join(f'"{d}.restart_*"' for d in DOMAINS) + "]",
        "risk_classification:",
        "  - match: {action_type: 'db.*'}",
        "    risk: high",
        "freeze_windows:",
        "  - name: weekend",
        "    timezone: Europe/Berlin",
        "    days: [sat, sun]",
        "    from: '00:00'",
        "    to: '23:59'",
        "rules:",
    ]
    for i in range(rules):
        effect = rng.choices(["deny", "allow", "require_approval"], weights=[1, 3, 2])[0]
        lines += [
            f"  - id: rule-{i}",
            f"    effect: {effect}",
            f"    match: {{action_type: '{rng.choice(DOMAINS)}.{rng.choice(VERBS)}_*', "
            f"target: '*://{rng.choice(['prod', 'staging', '*'])}/{rng.choice(TEAMS)}/*', "
            f"env: [{rng.choice(['prod', 'staging'])}]}}",
        ]
        if effect == "require_approval":
            lines.append(
                f"    when: {{confidence_below: {rng.uniform(0.4, 0.9):.2f}, no_runbook: true, in_freeze: true}}"
            )
    return "\n".join(lines) + "\n"


def proposals(n: int, rng: random.Random) -> list[Proposal]:
    return [
        Proposal(
            action_type=f"{rng.choice(DOMAINS)}.{rng.choice(VERBS)}_thing",
            target=f"k8s://{rng.choice(['prod', 'staging'])}/{rng.choice(TEAMS)}/svc-{i}",
            env=rng.choice(["prod", "staging"]),
            risk=rng.choice(["low", "medium", "high"]),
            confidence=rng.random(),
            agent=f"agent-{i % 20}",
            team=rng.choice(TEAMS),
            autonomy_mode=rng.choice(["suggest", "auto_low_risk"]),
            rollback_plan="revert",
            parameters={"replicas": rng.randint(1, 30)},
        )
        for i in range(n)
    ]


def measure(policy: CompiledPolicy, items: list[Proposal], now: datetime) -> list[float]:
    for p in items[:200]:
        policy.evaluate(p, now=now)  # warm up
    times = []
    for p in items:
        t0 = time.perf_counter_ns()
        policy.evaluate(p, now=now)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return sorted(times)


def main() -> None:
    rng = random.Random(42)
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    items = proposals(20_000, rng)
    t0 = time.perf_counter()
    big = CompiledPolicy(policy_parse(policy_yaml(200, rng)), version=1)
    compile_ms = (time.perf_counter() - t0) * 1000
    small = CompiledPolicy(policy_parse(policy_yaml(1, rng)), version=1)
    base = measure(small, items, now)
    times = measure(big, items, now)
    pct = lambda xs, q: xs[int(len(xs) * q) - 1]  # noqa: E731
    statuses = {}
    for p in items[:2000]:
        status = big.evaluate(p, now=now).status
        statuses[status] = statuses.get(status, 0) + 1
    print(
        f"200-rule policy parsed and compiled in {compile_ms:.1f} ms; decisions on 2,000 proposals: {statuses}"
    )
    print(f"  1 rule  : p50 {statistics.median(base):.3f} ms  p99 {pct(base, 0.99):.3f} ms")
    print(
        f"200 rules : p50 {statistics.median(times):.3f} ms  p99 {pct(times, 0.99):.3f} ms  "
        f"({statistics.median(times) / statistics.median(base):.1f}x the one-rule policy; target p99 <= 1 ms)"
    )


if __name__ == "__main__":
    main()
