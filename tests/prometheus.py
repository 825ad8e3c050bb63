"""A real Prometheus server for tests, with counters backfilled by promtool.

Debian's `prometheus` and `promtool` (apt package `prometheus`) are used as they are:
1. `openmetrics_counters()` writes counter samples as OpenMetrics text (timestamps in seconds,
   `# EOF` last);
2. `promtool tsdb create-blocks-from openmetrics FILE DIR` turns it into TSDB blocks in DIR
   (2-hour blocks by default, aligned to UTC);
3. `PrometheusServer` starts `prometheus` on a free port with DIR as its storage and no scrape
   job, so the backfilled blocks are the only data and nothing scraped can change them.

The blocks are on disk before the server starts, so its head (where new samples go) is empty
and cannot overlap them. Retention is long enough (`--storage.tsdb.retention.time=30d`) that
data from a few hours ago is never deleted while a session runs.

A fixture: `prometheus_server` in tests/slo/conftest.py (session scope, stopped at the end).
"""

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import requests

from tests.conftest import free_port, service_missing

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


@dataclass(frozen=True)
class Counter:
    """One counter series: its labels and its [(time, value)] samples, oldest first."""

    labels: dict[str, str]
    samples: Sequence[tuple[datetime, float]]


def openmetrics_counters(name: str, series: Sequence[Counter], help_text: str = "") -> str:
    """The OpenMetrics text of one counter family (`name` without `_total`)."""
    lines = [f"# HELP {name} {help_text or name}", f"# TYPE {name} counter"]
    for counter in series:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(counter.labels.items()))
        for moment, value in counter.samples:
            lines.append(f"{name}_total{{{labels}}} {value!r} {moment.timestamp():.3f}")
    return "\n".join(lines) + "\n# EOF\n"


def binaries_present() -> bool:
    return Path(PROMETHEUS).is_file() and Path(PROMTOOL).is_file()


def backfill(openmetrics: str, data_dir: Path) -> None:
    """Write TSDB blocks for `openmetrics` into `data_dir` (before the server starts)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    source = data_dir.parent / "backfill.om"
    source.write_text(openmetrics)
    done = subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "-q", str(source), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"promtool failed ({done.returncode}): {done.stderr or done.stdout}")


class PrometheusServer:
    """`prometheus` on 127.0.0.1:<free port> with `data_dir` as storage."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / "prometheus.log"

    def start(self, timeout: float = 30.0) -> None:
        config = self.data_dir.parent / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1m\n")  # no scrape job: data stays put
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.data_dir}",
                    "--storage.tsdb.retention.time=30d",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited at start:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus not ready after {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""


@contextmanager
def prometheus_with(openmetrics: str) -> Iterator[PrometheusServer]:
    """A running server holding `openmetrics`; stopped and its files removed on exit. Without
    the binaries: the test is skipped, or fails in CI (OPSDASH_REQUIRE_SERVICES=1)."""
    if not binaries_present():
        service_missing(f"{PROMETHEUS} and {PROMTOOL} (apt package prometheus)")
    root = Path(tempfile.mkdtemp(prefix="opsdash-prometheus-"))
    server = PrometheusServer(root / "data")
    try:
        backfill(openmetrics, server.data_dir)
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def openmetrics_gauges(name: str, series: Sequence[Counter], help_text: str = "") -> str:
    """The OpenMetrics text of one gauge family (e.g. DCGM_FI_DEV_POWER_USAGE, watts)."""
    lines = [f"# HELP {name} {help_text or name}", f"# TYPE {name} gauge"]
    for gauge in series:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(gauge.labels.items()))
        for moment, value in gauge.samples:
            lines.append(f"{name}{{{labels}}} {value!r} {moment.timestamp():.3f}")
    return "\n".join(lines) + "\n# EOF\n"
