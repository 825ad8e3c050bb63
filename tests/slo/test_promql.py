"""PromQL SLIs against a real Prometheus server holding known counters (tests/slo/conftest.py).

Minute k of the data has GOOD[k] requests answered 200 and BAD[k] answered 500; the numbers
below are those lists added up by hand."""

import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db.models import Sum

from apps.slo.models import Slo, SloRollup
from apps.slo.promql import (
    NOT_CONFIGURED,
    promql_check,
    promql_problem,
    promql_refresh_all,
    promql_rollups_reset,
    promql_slo_refresh,
    promql_validate,
)
from apps.slo.tasks import promql_refresh_one_task, promql_refresh_task
from tests.conftest import free_port
from tests.slo.conftest import BAD, GOOD, PromData

pytestmark = pytest.mark.django_db

GOOD_QUERY = 'sum(increase(http_requests_total{code!~"5.."}[1m]))'
TOTAL_QUERY = "sum(increase(http_requests_total[1m]))"


def promql_slo(**fields: object) -> Slo:
    values: dict[str, object] = {
        "slug": "api-availability",
        "name": "API availability",
        "sli": "promql",
        "objective": Decimal("0.99"),
        "good_query": GOOD_QUERY,
        "total_query": TOTAL_QUERY,
    }
    values.update(fields)
    return Slo.objects.create(**values)


def rollups(slo: Slo, start: datetime) -> list[tuple[int, int, int]]:
    """(minute index from the data's start, good, total) of every rollup, in order."""
    return [
        (int((row.minute - start).total_seconds() // 60), row.good, row.total)
        for row in SloRollup.objects.filter(slo=slo).order_by("minute")
    ]


def expected(minutes: range) -> list[tuple[int, int, int]]:
    return [(k, GOOD[k], GOOD[k] + BAD[k]) for k in minutes]


def sli(slo: Slo, start: datetime, end: datetime) -> Decimal:
    sums = SloRollup.objects.filter(slo=slo, minute__gte=start, minute__lt=end).aggregate(
        good=Sum("good"), total=Sum("total")
    )
    return (Decimal(sums["good"]) / Decimal(sums["total"])).quantize(Decimal("0.000001"))


def test_fills_one_rollup_per_minute_with_the_counters_increase(prometheus: PromData) -> None:
    slo = promql_slo()
    start = prometheus.start
    assert promql_problem(slo) == "Not read from Prometheus yet: PromQL SLOs are read every minute."

    result = promql_slo_refresh(slo, now=start + timedelta(minutes=40, seconds=30))

    assert result.error == ""
    assert result.written == 30
    assert result.end == start + timedelta(minutes=40)
    assert rollups(slo, start) == expected(range(30))
    assert rollups(slo, start)[:3] == [(0, 80, 80), (1, 117, 122), (2, 93, 95)]
    assert promql_problem(slo) is None
    # 3,306 good of 3,398 over the 30 minutes; 1,102 of 1,135 in minutes 10-19.
    assert sli(slo, start, start + timedelta(minutes=30)) == Decimal("0.972925")
    assert sli(slo, start + timedelta(minutes=10), start + timedelta(minutes=20)) == Decimal(
        "0.970925"
    )


def test_only_complete_minutes_are_filled(prometheus: PromData) -> None:
    slo = promql_slo()
    start = prometheus.start

    # At 12:59 into the data, minute 12 is still running: minutes 0-11 only.
    promql_slo_refresh(slo, now=start + timedelta(minutes=12, seconds=59))

    assert rollups(slo, start) == expected(range(12))


def test_running_again_overwrites_and_restates_recent_minutes(prometheus: PromData) -> None:
    slo = promql_slo()
    start = prometheus.start
    promql_slo_refresh(slo, now=start + timedelta(minutes=20, seconds=30))
    assert rollups(slo, start) == expected(range(20))
    # Minute 17 is within the 5 minutes the next run reads again: a late scrape is corrected.
    SloRollup.objects.filter(slo=slo, minute=start + timedelta(minutes=17)).update(
        good=999, total=999
    )

    second = promql_slo_refresh(slo, now=start + timedelta(minutes=40, seconds=30))
    third = promql_slo_refresh(slo, now=start + timedelta(minutes=40, seconds=30))

    assert second.start == start + timedelta(minutes=15)
    assert second.written == 15  # minutes 15-29
    assert third.written == 0  # minutes 35-39: no data there any more
    assert rollups(slo, start) == expected(range(30))
    assert SloRollup.objects.filter(slo=slo).count() == 30


def test_lost_cursor_resumes_after_the_last_rollup(prometheus: PromData) -> None:
    from django.core.cache import cache

    slo = promql_slo()
    start = prometheus.start
    promql_slo_refresh(slo, now=start + timedelta(minutes=40, seconds=30))
    cache.clear()  # e.g. the worker restarted with a per-process cache

    again = promql_slo_refresh(slo, now=start + timedelta(minutes=40, seconds=30))

    # From after minute 29 (the last rollup), less the 5 minutes read again each run.
    assert again.start == start + timedelta(minutes=25)
    assert rollups(slo, start) == expected(range(30))


def test_beat_task_backfills_the_window_on_its_first_run(prometheus: PromData) -> None:
    slo = promql_slo(window_days=28)

    # 28 days of minutes are more than one range query may hold: read in pieces.
    summary = promql_refresh_task()

    assert summary == {"slos": 1, "rows_written": 30, "errors": 0}
    assert rollups(slo, prometheus.start) == expected(range(30))


def test_prometheus_stopped_keeps_rollups_and_says_why(own_prometheus: PromData) -> None:
    slo = promql_slo()
    start, server = own_prometheus.start, own_prometheus.server
    promql_refresh_all(now=start + timedelta(minutes=20, seconds=30))
    assert promql_problem(slo) is None
    server.stop()

    results = promql_refresh_all(now=start + timedelta(minutes=40, seconds=30))

    message = f"Prometheus at {server.url} cannot be reached: ConnectionError"
    assert [(r.slo_id, r.written, r.error) for r in results] == [(slo.pk, 0, message)]
    assert rollups(slo, start) == expected(range(20))
    when = (start + timedelta(minutes=40, seconds=30)).strftime("%Y-%m-%d %H:%M")
    assert promql_problem(slo) == f"{message} (last attempt {when} UTC)"

    # Back up: the next run reads from minute 15 (20 less the 5 minutes read again each run),
    # and the problem is gone.
    server.start()
    results = promql_refresh_all(now=start + timedelta(minutes=41))
    assert [(r.written, r.error) for r in results] == [(15, "")]
    assert rollups(slo, start) == expected(range(30))
    assert promql_problem(slo) is None


def test_one_unreachable_run_is_recorded_on_every_promql_slo(settings) -> None:  # type: ignore[no-untyped-def]
    first = promql_slo()
    second = promql_slo(slug="checkout-availability")
    settings.PROMETHEUS_URL = f"http://127.0.0.1:{free_port()}"

    results = promql_refresh_all()

    message = f"Prometheus at {settings.PROMETHEUS_URL} cannot be reached: ConnectionError"
    assert [(r.slo_id, r.error) for r in results] == [(first.pk, message), (second.pk, message)]
    assert promql_problem(second).startswith(message)  # type: ignore[union-attr]


def test_query_returning_several_series_is_refused(prometheus: PromData) -> None:
    slo = promql_slo(good_query="increase(http_requests_total[1m])")

    result = promql_slo_refresh(slo, now=prometheus.start + timedelta(minutes=40))

    message = (
        'The good query returns 2 series ({code="200", job="api"}, {code="500", job="api"}); '
        "it must aggregate to one series, e.g. sum(increase(…[1m]))."
    )
    assert result.error == message
    assert SloRollup.objects.filter(slo=slo).count() == 0
    assert promql_problem(slo) is not None
    assert promql_problem(slo).startswith(message)  # type: ignore[union-attr]


def test_minutes_with_nan_or_inf_samples_get_no_row(prometheus: PromData) -> None:
    # x / bad * bad: +Inf * 0 = NaN in the six minutes without a 500, the total otherwise.
    bad = 'sum(increase(http_requests_total{code="500"}[1m]))'
    slo = promql_slo(total_query=f"sum(increase(http_requests_total[1m])) / {bad} * {bad}")

    result = promql_slo_refresh(slo, now=prometheus.start + timedelta(minutes=40))

    with_errors = [k for k in range(30) if BAD[k] > 0]
    assert result.skipped == 6
    assert len(with_errors) == 24
    assert rollups(slo, prometheus.start) == expected(with_errors)  # type: ignore[arg-type]


def test_minutes_without_a_good_sample_count_zero_good(prometheus: PromData) -> None:
    # No series has code 404: sum() over nothing is empty, i.e. no good event in that minute.
    slo = promql_slo(good_query='sum(increase(http_requests_total{code="404"}[1m]))')

    promql_slo_refresh(slo, now=prometheus.start + timedelta(minutes=3))

    assert rollups(slo, prometheus.start) == [(0, 0, 80), (1, 0, 122), (2, 0, 95)]


def test_fractional_counts_are_rounded_to_the_nearest_integer(prometheus: PromData) -> None:
    slo = promql_slo(
        good_query='sum(increase(http_requests_total{code="200"}[1m])) / 4',
        total_query="sum(increase(http_requests_total[1m])) / 4",
    )

    promql_slo_refresh(slo, now=prometheus.start + timedelta(minutes=3))

    # 80/4 = 20 of 20; 117/4 = 29.25 → 29 of 122/4 = 30.5 → 31; 93/4 = 23.25 → 23 of 23.75 → 24.
    assert rollups(slo, prometheus.start) == [(0, 20, 20), (1, 29, 31), (2, 23, 24)]


def test_without_prometheus_url_promql_slos_show_why(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PROMETHEUS_URL = ""
    slo = promql_slo()

    results = promql_refresh_all()

    assert [r.error for r in results] == [NOT_CONFIGURED]
    assert promql_problem(slo) == (
        "PROMETHEUS_URL is not set: PromQL SLOs have no data until it is."
    )
    assert SloRollup.objects.filter(slo=slo).count() == 0


# ---- create-time validation -----------------------------------------------------------------


def test_validate_accepts_a_per_minute_count(prometheus: PromData) -> None:
    at = prometheus.start + timedelta(minutes=20)
    assert promql_validate(GOOD_QUERY, now=at) == []
    assert promql_check(TOTAL_QUERY, now=at).warnings == []
    # No data in the 10 minutes checked (now, three hours after the data): still accepted.
    assert promql_validate(GOOD_QUERY) == []


def test_validate_reports_a_syntax_error(prometheus: PromData) -> None:
    assert promql_validate("sum(increase(http_requests_total[1m])") == [
        "Prometheus refused the query: 1:38: parse error: unclosed left parenthesis"
    ]


def test_validate_refuses_several_series_range_vectors_and_strings(prometheus: PromData) -> None:
    at = prometheus.start + timedelta(minutes=20)
    assert promql_validate("http_requests_total", now=at) == [
        'The query returns 2 series ({__name__="http_requests_total", code="200", job="api"}, '
        '{__name__="http_requests_total", code="500", job="api"}); it must aggregate to one '
        "series, e.g. sum(increase(…[1m]))."
    ]
    assert promql_validate("http_requests_total[1m]", now=at) == [
        'Prometheus refused the query: invalid expression type "range vector" for range query, '
        "must be Scalar or instant Vector"
    ]
    assert promql_validate('"text"', now=at) == [
        'Prometheus refused the query: invalid expression type "string" for range query, '
        "must be Scalar or instant Vector"
    ]
    assert promql_validate("  ") == ["Enter a PromQL query."]


def test_validate_without_prometheus_only_warns(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PROMETHEUS_URL = ""
    check = promql_check("sum(rate(x[1m]")
    assert check.errors == []
    assert check.warnings == [
        "The query was not checked. PROMETHEUS_URL is not set: PromQL SLOs have no data "
        "until it is."
    ]
    dead = f"http://127.0.0.1:{free_port()}"
    settings.PROMETHEUS_URL = dead
    assert promql_check(GOOD_QUERY) == type(check)(
        errors=[],
        warnings=[
            f"The query was not checked. Prometheus at {dead} cannot be reached: ConnectionError"
        ],
    )


def test_rollups_deleted_by_a_rebuild_are_read_again(prometheus: PromData) -> None:
    slo = promql_slo()
    at = prometheus.start + timedelta(minutes=40, seconds=30)
    promql_slo_refresh(slo, now=at)
    SloRollup.objects.filter(slo=slo).delete()  # the cached cursor still says "read to 40"

    again = promql_slo_refresh(slo, now=at)

    assert again.start == at.replace(second=0) - timedelta(days=28)
    assert rollups(slo, prometheus.start) == expected(range(30))


def test_reset_reads_the_window_again_with_the_new_queries(prometheus: PromData) -> None:
    slo = promql_slo()
    at = prometheus.start + timedelta(minutes=3)
    promql_slo_refresh(slo, now=at)
    slo.good_query = 'sum(increase(http_requests_total{code="500"}[1m]))'
    slo.revision += 1
    slo.save()

    assert promql_rollups_reset(slo) == 3
    promql_slo_refresh(slo, now=at)

    assert rollups(slo, prometheus.start) == [(0, 0, 80), (1, 5, 122), (2, 2, 95)]


def test_refresh_one_task_fills_a_new_slo_and_ignores_others(prometheus: PromData) -> None:
    slo = promql_slo()
    other = promql_slo(slug="acceptance", sli="acceptance", good_query="", total_query="")

    assert promql_refresh_one_task(slo.pk) == 30
    assert promql_refresh_one_task(other.pk) == 0
    assert promql_refresh_one_task(999_999) == 0
    assert SloRollup.objects.filter(slo=other).count() == 0


def test_prometheus_that_does_not_answer_times_out_with_a_clear_error(settings) -> None:  # type: ignore[no-untyped-def]
    slo = promql_slo()
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        settings.PROMETHEUS_URL = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings.PROMETHEUS_TIMEOUT_SECONDS = 0.3

        results = promql_refresh_all()

    message = f"Prometheus at {settings.PROMETHEUS_URL} did not answer within 0.3 s."
    assert [r.error for r in results] == [message]
    assert promql_problem(slo).startswith(message)  # type: ignore[union-attr]


def test_missing_prometheus_binary_fails_in_ci_and_skips_elsewhere(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import tests.conftest
    import tests.prometheus

    monkeypatch.setattr(tests.prometheus, "PROMETHEUS", "/nonexistent/prometheus")
    monkeypatch.setattr(tests.conftest, "REQUIRE_SERVICES", True)
    with (
        pytest.raises(pytest.fail.Exception, match="required service missing: /nonexistent"),
        tests.prometheus.prometheus_with("# EOF\n"),
    ):
        pass
    monkeypatch.setattr(tests.conftest, "REQUIRE_SERVICES", False)
    with (
        pytest.raises(pytest.skip.Exception, match="service missing: /nonexistent"),
        tests.prometheus.prometheus_with("# EOF\n"),
    ):
        pass


class _NotPrometheus(BaseHTTPRequestHandler):
    """Answers every request with the status and body set on the server."""

    def do_GET(self) -> None:
        status, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_prometheus(settings) -> Iterator[ThreadingHTTPServer]:  # type: ignore[no-untyped-def]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotPrometheus)
    server.answer = (200, b"<html>Grafana</html>")  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.PROMETHEUS_URL = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def test_an_address_that_is_not_prometheus_is_named(not_prometheus, settings) -> None:  # type: ignore[no-untyped-def]
    slo = promql_slo()

    html = promql_refresh_all()
    not_prometheus.answer = (401, b"Unauthorized")
    refused = promql_refresh_all()

    url = settings.PROMETHEUS_URL
    assert [r.error for r in html] == [
        f"{url} did not answer as Prometheus's HTTP API does (no JSON). Is PROMETHEUS_URL the "
        "server's address, e.g. http://prometheus:9090?"
    ]
    assert [r.error for r in refused] == [
        f"Prometheus at {url} answered HTTP 401: HTTP Status Code 401 (b'Unauthorized')"
    ]
    assert promql_check(GOOD_QUERY).warnings == [
        f"The query was not checked. Prometheus at {url} answered HTTP 401: HTTP Status Code 401 "
        "(b'Unauthorized')"
    ]
    assert SloRollup.objects.filter(slo=slo).count() == 0


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("prometheus:9090", "PROMETHEUS_URL='prometheus:9090' must be an http:// or https:// URL."),
        ("http://prometheus:9090/", ""),
        ("", ""),
    ],
)
def test_prometheus_url_must_be_http(value: str, error: str) -> None:
    from tests.test_settings import _django_setup

    result = _django_setup(DEBUG="1", PROMETHEUS_URL=value)

    if error:
        assert error in result.stderr
    else:
        assert result.returncode == 0, result.stderr


def test_a_query_without_data_is_not_read_from_the_window_start_every_run(
    prometheus: PromData,
) -> None:
    slo = promql_slo(total_query='sum(increase(http_requests_total{code="404"}[1m]))')
    at = prometheus.start + timedelta(minutes=40)

    first = promql_slo_refresh(slo, now=at)
    second = promql_slo_refresh(slo, now=at + timedelta(minutes=1))

    assert (first.start, first.written) == (at - timedelta(days=28), 0)
    assert (second.start, second.written) == (at - timedelta(minutes=5), 0)
    assert promql_problem(slo) == (
        "Prometheus has returned no events for the total query in this SLO's window: check "
        "that it matches series (try it in Prometheus's graph page) and returns a count per "
        "minute."
    )
