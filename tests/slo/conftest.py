"""SLO test fixtures: a real Prometheus server holding known request counters."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache

from tests.prometheus import Counter, PrometheusServer, openmetrics_counters, prometheus_with

# Requests per minute of the backfilled counters, minute k of PROM_MINUTES: the counter
# http_requests_total{job="api",code="200"} grows by GOOD[k] and {code="500"} by BAD[k] during
# minute k, evenly over four 15 s scrapes, so increase(…[1m]) is exactly these numbers.
GOOD = [(80 + (k * 37) % 61) for k in range(30)]
BAD = [0 if k % 5 == 0 else (k * 11) % 7 + 1 for k in range(30)]
SCRAPE = timedelta(seconds=15)


@dataclass(frozen=True)
class PromData:
    server: PrometheusServer
    start: datetime  # the first minute with data; minute k is start + k minutes
    minutes: int

    @property
    def url(self) -> str:
        return self.server.url


def _counter(labels: dict[str, str], per_minute: list[int], start: datetime) -> Counter:
    samples = [(start, 0.0)]
    value = 0.0
    for k, count in enumerate(per_minute):
        for j in range(1, 5):
            samples.append((start + timedelta(minutes=k) + SCRAPE * j, value + count * j / 4))
        value += count
    return Counter(labels, samples)


def known_counters(start: datetime) -> str:
    """GOOD and BAD as OpenMetrics text, minute 0 starting at `start`."""
    return openmetrics_counters(
        "http_requests",
        [
            _counter({"job": "api", "code": "200"}, GOOD, start),
            _counter({"job": "api", "code": "500"}, BAD, start),
        ],
    )


def _data_start() -> datetime:
    # Three hours ago: inside a past 2-hour block range, well within the 30-day retention.
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)


@pytest.fixture(scope="session")
def prometheus_server() -> Iterator[PromData]:
    """Prometheus on a free port with GOOD/BAD backfilled, shared by the session's tests and
    stopped at its end. Tests must not stop it: use `own_prometheus` for that."""
    start = _data_start()
    with prometheus_with(known_counters(start)) as server:
        yield PromData(server=server, start=start, minutes=len(GOOD))


@pytest.fixture
def own_prometheus(settings) -> Iterator[PromData]:  # type: ignore[no-untyped-def]
    """A server of this test's own, with the same data, that it may stop and start again."""
    start = _data_start()
    with prometheus_with(known_counters(start)) as server:
        settings.PROMETHEUS_URL = server.url
        yield PromData(server=server, start=start, minutes=len(GOOD))


@pytest.fixture
def prometheus(prometheus_server: PromData, settings) -> PromData:  # type: ignore[no-untyped-def]
    """The session's server as this test's PROMETHEUS_URL, with an empty cache."""
    settings.PROMETHEUS_URL = prometheus_server.url
    settings.PROMETHEUS_TIMEOUT_SECONDS = 5.0
    return prometheus_server


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Cursors and recorded errors live in the cache: none may outlive its test."""
    cache.clear()
    yield
    cache.clear()
