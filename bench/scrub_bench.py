"""Throughput of apps.audit.scrubbing.scrub_text on a realistic ingest mix.

Run: ``.venv/bin/python bench/scrub_bench.py [--strings N] [--rounds R]`` (about 5 s).

The mix: 3/4 short (~600 B) JSON-ish event strings without PII, 1/4 LLM request/response text
(~3 KB) carrying a few PII items. The baseline is the floor of touching each string once, a
``str.find('@')`` plus a ``re.search`` of a trivial pattern, measured in the same run so the
ratio stays comparable across machines.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsdash.settings")
os.environ.setdefault("DEBUG", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django

django.setup()

from apps.audit.scrubbing import scrub_text  # noqa: E402

TOOLS = ["kubectl", "terraform", "helm", "aws", "psql", "curl", "gh", "systemctl"]
STATUSES = ["ok", "ok", "ok", "error", "timeout", "denied"]
WORDS = [
    "the",
    "deployment",
    "rollout",
    "pods",
    "replicas",
    "node",
    "cluster",
    "namespace",
    "ingress",
    "service",
    "latency",
    "error",
    "budget",
    "restart",
    "config",
    "map",
    "volume",
    "claim",
    "pending",
    "running",
    "crash",
    "loop",
    "back",
    "off",
    "image",
    "pull",
    "certificate",
    "expiry",
    "alert",
    "threshold",
    "metric",
    "dashboard",
    "runbook",
    "incident",
    "postmortem",
    "change",
    "approval",
    "window",
    "canary",
    "traffic",
    "shift",
    "database",
    "migration",
    "index",
    "vacuum",
    "replica",
    "lag",
    "queue",
    "consumer",
    "offset",
    "partition",
    "retention",
    "backup",
    "snapshot",
    "restore",
    "policy",
    "role",
    "binding",
]
PII = [
    "alice.smith@example.com",
    "10.0.12.7",
    "2001:db8::1",
    "+14155550123",
    "(415) 555-0123",
    "4111 1111 1111 1111",
    "AKIAIOSFODNN7EXAMPLE",
    "password=hunter2",
    "Authorization: Bearer 8f14e45fceea167a5a36dedd4bea2543",
    "ghp_R4nD0mT0k3nV4lu3F0rT3st1ngPurp0s3s12",
    "sk-proj-4fG7hJ2kL9mN3pQ6rS8tV1wX5yZ0aB2cD4eF6gH8iJ0kL2mN4oP6qR8sT0uV2wX4yZ6aB8c",
]


def short_event(rng: random.Random) -> str:
    """One ~600-byte JSON-ish audit event without PII."""
    ts = f"2024-05-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
    parts = [
        f'{{"id":"evt_{rng.getrandbits(64):016x}","type":"tool_call","ts":"{ts}:12.{rng.randint(0, 999):03d}Z"',
        f'"agent":"triage-bot-{rng.randint(1, 9)}","run":"{rng.getrandbits(128):032x}"',
        f'"tool":"{rng.choice(TOOLS)}","args":["get","pods","-n","prod-{rng.randint(1, 40)}"]',
        f'"status":"{rng.choice(STATUSES)}","duration_ms":{rng.randint(1, 90000)}',
        f'"model":"claude-3-5-sonnet","usage":{{"input_tokens":{rng.randint(10, 9000)},'
        f'"output_tokens":{rng.randint(10, 4000)}}}',
        f'"cost_usd":"0.{rng.randint(0, 99999):05d}","workspace":"ops-{rng.randint(1, 50)}"',
        f'"msg":"{" ".join(rng.choice(WORDS) for _ in range(22))}"}}',
    ]
    return ",".join(parts)


def llm_text(rng: random.Random) -> str:
    """One ~3 KB LLM request/response body with a few PII items mixed into prose and JSON."""
    chunks: list[str] = ['{"role":"user","content":"']
    size = 0
    pii_left = rng.randint(2, 4)
    while size < 3000:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 18)))
        sentence = sentence.capitalize()
        if pii_left and rng.random() < 0.15:
            sentence += f" {rng.choice(PII)}"
            pii_left -= 1
        if rng.random() < 0.1:
            sentence += (
                f" at 12:{rng.randint(10, 59)}:{rng.randint(10, 59)} ({rng.randint(1, 999)} ms)"
            )
        chunk = sentence + ". "
        chunks.append(chunk)
        size += len(chunk)
    chunks.append('"},{"role":"assistant","content":"Done."}')
    return "".join(chunks)


def build_mix(n: int, seed: int = 20240501) -> list[str]:
    rng = random.Random(seed)
    return [llm_text(rng) if i % 4 == 3 else short_event(rng) for i in range(n)]


TRIVIAL = re.compile(r"\x00zz")


def baseline(strings: Sequence[str]) -> None:
    search = TRIVIAL.search
    for s in strings:
        s.find("@")
        search(s)


def scrub_all(strings: Sequence[str]) -> None:
    for s in strings:
        scrub_text(s)


def best_of(fn: Callable[[Sequence[str]], None], strings: Sequence[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn(strings)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strings", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    strings = build_mix(args.strings)
    short = [s for i, s in enumerate(strings) if i % 4 != 3]
    long = [s for i, s in enumerate(strings) if i % 4 == 3]
    # Not part of the mix: the design's yardstick, a clean ~1 KB string (two events' worth).
    clean_kb = [f"[{a},{b}]" for a, b in zip(short[::2], short[1::2], strict=False)]
    changed = sum(scrub_text(s) is not s for s in strings)
    assert all(scrub_text(s) is s for s in short + clean_kb), "a clean string was changed"
    scrub_all(strings)  # warm the compiled-pattern caches

    print(f"python {sys.version.split()[0]}, {len(strings)} strings, best of {args.rounds} rounds")
    print(f"{'set':<24}{'n':>6}{'avg B':>7}{'µs/str':>9}{'MB/s':>7}{'base µs':>9}{'ratio':>7}")
    sets = (
        ("all (the mix)", strings),
        ("  3/4 JSON, no PII", short),
        ("  1/4 LLM text, PII", long),
        ("clean 1 KB JSON", clean_kb),
    )
    for label, subset in sets:
        total = sum(len(s) for s in subset)
        base = best_of(baseline, subset, args.rounds)
        took = best_of(scrub_all, subset, args.rounds)
        print(
            f"{label:<24}{len(subset):>6}{total / len(subset):>7.0f}"
            f"{took / len(subset) * 1e6:>9.2f}{total / took / 1e6:>7.1f}"
            f"{base / len(subset) * 1e6:>9.2f}{took / base:>7.1f}"
        )
    median_kb = statistics.median(best_of(scrub_all, [s], 20) * 1e6 for s in clean_kb[:300])
    print(f"clean 1 KB JSON, median of single strings: {median_kb:.2f} µs")
    print(f"strings of the mix changed by scrubbing: {changed} of {len(strings)}")


if __name__ == "__main__":
    main()
