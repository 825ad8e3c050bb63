"""PromQL SLIs: per-minute rollups of a PromQL SLO, read from Prometheus.

A PromQL SLO (`Slo.sli == "promql"`) is the ratio of two queries, `good_query` over
`total_query`. It has no SliFact rows: a beat task (`slo.promql_refresh`, every minute) asks
Prometheus for both queries over the minutes not filled yet and writes one SloRollup per
minute.

The convention users must follow — each query returns, for every evaluation time T, the count
of events in the minute that ends at T, as ONE series:

    good:  sum(increase(http_requests_total{code!~"5.."}[1m]))
    total: sum(increase(http_requests_total[1m]))

* We query with `query_range` at a 1-minute step on minute boundaries. The sample at T becomes
  the rollup of the minute [T - 1 m, T); only complete minutes are asked for.
* `increase()` extrapolates, so counts may be fractional. SloRollup stores integers: each
  minute's value is rounded to the nearest integer (halves up). For a counter scraped every
  15-60 s that is within half an event per minute; a very low-traffic SLI whose per-minute
  counts are mostly 0-2 is better expressed over a coarser unit (e.g. `increase(…[1m]) * 100`
  to count hundredths) — the SLI is a ratio, so a common scale factor cancels out.
* A minute with a total sample but no good sample counts 0 good: in PromQL `sum()` over no
  series is empty, which is what `{code!~"5.."}` gives in a minute of only errors. A minute
  without a total sample, or whose total rounds to 0, has no events and gets no row. Good is capped at total (rounding, or
  extrapolation of two counters, can make it exceed total by a little).
* A NaN, ±Inf or negative sample (in either query) is skipped: no row for that minute.
* A query that returns several series (e.g. one per `code`) is refused with a message: the
  query must aggregate to one series, e.g. with `sum(…)`.

Idempotent: the minutes fetched in a run replace the rollups of those minutes (rows are
overwritten, never added to; a minute that no longer has data loses its row). Each run also
re-reads the last few minutes, so samples scraped late still land.

When Prometheus cannot be reached or refuses a query, the run logs it, keeps the rollups it
has, and tries again next minute from the same place; the error is kept in the cache for the
SLO page: `promql_problem(slo)`. Without PROMETHEUS_URL nothing is fetched and the page says so.
"""

import ast
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from apps.slo.models import SliKind, Slo, SloRollup, WindowKind
from apps.slo.windows import calendar_month_bounds

logger = logging.getLogger(__name__)

STEP = timedelta(minutes=1)
# Prometheus refuses a range query of more than 11,000 points per series.
MAX_POINTS_PER_QUERY = 10_000
# Never read further back than the longest window an SLO can have (a 31-day calendar month).
MAX_BACKFILL = timedelta(days=31)
# Re-read this much of the recent past each run: a scrape that lands late changes a minute
# that an earlier run already wrote.
RESTATE = timedelta(minutes=5)
# How long a recorded error stays visible without a new run confirming or clearing it.
PROBLEM_TTL = 3600

# Help text for the good/total query fields of forms and the API schema.
QUERY_HELP = (
    "PromQL returning, as one series, the number of events in the minute ending at each "
    'evaluation time, e.g. sum(increase(http_requests_total{code!~"5.."}[1m])) for good and '
    "sum(increase(http_requests_total[1m])) for total. Fractional counts are rounded per minute."
)
NOT_CONFIGURED = "PROMETHEUS_URL is not set: PromQL SLOs have no data until it is."
NOT_READ_YET = "Not read from Prometheus yet: PromQL SLOs are read every minute."
NO_SAMPLES = (
    "Prometheus has returned no events for the total query in this SLO's window: check that "
    "it matches series (try it in Prometheus's graph page) and returns a count per minute."
)


class PromqlError(Exception):
    """A query that Prometheus refused, or whose answer breaks the convention above."""


class PrometheusUnreachable(Exception):
    """Prometheus did not answer (down, refused the connection, timed out, 5xx)."""


@dataclass(frozen=True)
class QueryCheck:
    """What create/edit forms show for a query: errors block saving, warnings do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class RefreshResult:
    """What one refresh of one SLO did (returned for tests, logs and the task's summary)."""

    slo_id: int
    start: datetime | None = None  # the first minute asked for
    end: datetime | None = None  # the minute after the last one asked for
    written: int = 0  # rollup rows written (inserted or overwritten)
    skipped: int = 0  # minutes skipped for a NaN, ±Inf or negative sample
    error: str = ""


def prometheus_client() -> PrometheusConnect | None:
    """A client for PROMETHEUS_URL, or None when it is not set.

    One quick retry at most: a beat task runs again in a minute, and a page waiting on a
    validation must not hang for the library's default of three retries with backoff."""
    url = settings.PROMETHEUS_URL
    if not url:
        return None
    # read=False: a query that timed out is slow, not lost; asking again only doubles the wait.
    # raise_on_status=False: after the retry, a 503 reaches us with Prometheus's own message.
    retry = Retry(
        total=1,
        read=False,
        backoff_factor=0.2,
        status_forcelist=[502, 503, 504],
        raise_on_status=False,
    )
    return PrometheusConnect(url=url, retry=retry, timeout=settings.PROMETHEUS_TIMEOUT_SECONDS)


# ---- errors ---------------------------------------------------------------------------------


def _api_error_text(exc: PrometheusApiClientException) -> tuple[int | None, str]:
    """The HTTP status and Prometheus's own error message out of the library's exception, whose
    text is `HTTP Status Code 400 (b'{"status":"error",…,"error":"…"}')`."""
    text = str(exc)
    status: int | None = None
    parts = text.split()
    if len(parts) > 3 and parts[3].isdigit():
        status = int(parts[3])
    start = text.find("(b")
    if start != -1 and text.endswith(")"):
        try:
            body = ast.literal_eval(text[start + 1 : -1])
            payload = json.loads(body)
            return status, str(payload.get("error") or payload)
        except (ValueError, SyntaxError, TypeError, AttributeError):
            pass
    return status, text


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """One API call, its failures sorted into "Prometheus is not there" and "it refused this
    query" (400 bad_data, 422 execution error: the query is wrong, retrying will not help;
    any other status, e.g. 401 from a proxy or 404 for a wrong PROMETHEUS_URL, is not the
    query's fault)."""
    try:
        return fn(*args, **kwargs)
    except requests.Timeout as exc:
        raise PrometheusUnreachable(
            f"Prometheus at {settings.PROMETHEUS_URL} did not answer within "
            f"{settings.PROMETHEUS_TIMEOUT_SECONDS:g} s."
        ) from exc
    except requests.JSONDecodeError as exc:
        raise PrometheusUnreachable(
            f"{settings.PROMETHEUS_URL} did not answer as Prometheus's HTTP API does "
            f"(no JSON). Is PROMETHEUS_URL the server's address, e.g. http://prometheus:9090?"
        ) from exc
    except requests.RequestException as exc:
        raise PrometheusUnreachable(
            f"Prometheus at {settings.PROMETHEUS_URL} cannot be reached: {exc.__class__.__name__}"
        ) from exc
    except (KeyError, TypeError) as exc:
        raise PrometheusUnreachable(
            f"{settings.PROMETHEUS_URL} did not answer as Prometheus's HTTP API does "
            f"({exc.__class__.__name__}: {exc})."
        ) from exc
    except PrometheusApiClientException as exc:
        status, message = _api_error_text(exc)
        if status in (400, 422):
            raise PromqlError(message) from exc
        raise PrometheusUnreachable(
            f"Prometheus at {settings.PROMETHEUS_URL} answered HTTP {status}: {message}"
        ) from exc


def _series_label(metric: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()))
    return "{" + inner + "}"


def _several_series(subject: str, result: list[dict[str, Any]]) -> str:
    shown = ", ".join(_series_label(s.get("metric", {})) for s in result[:3])
    more = f" and {len(result) - 3} more" if len(result) > 3 else ""
    return (
        f"{subject} returns {len(result)} series ({shown}{more}); it must aggregate to one "
        f"series, e.g. sum(increase(…[1m]))."
    )


def _one_series(which: str, result: list[dict[str, Any]]) -> list[list[Any]]:
    """The samples of the query's only series (none when the result is empty)."""
    if not result:
        return []
    if len(result) > 1:
        raise PromqlError(_several_series(f"The {which} query", result))
    return list(result[0].get("values", []))


# ---- per-minute counts ----------------------------------------------------------------------


def _count(raw: Any) -> int | None:
    """A sample's value as a whole count of events, or None when it is not a count."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    if math.isnan(value) or math.isinf(value) or value < 0:
        return None
    # Through str: the float's shortest repr, so 7.999999999999999 rounds to 8, 2.5 to 3.
    return int(Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _by_minute(samples: Iterable[list[Any]]) -> tuple[dict[datetime, int], set[datetime]]:
    """{minute: count} from [[unix time, "value"], …] (the sample at T is the minute before T),
    and the minutes whose sample was not a count."""
    counts: dict[datetime, int] = {}
    invalid: set[datetime] = set()
    for ts, raw in samples:
        minute = datetime.fromtimestamp(round(float(ts)), tz=UTC) - STEP
        count = _count(raw)
        if count is None:
            invalid.add(minute)
        else:
            counts[minute] = count
    return counts, invalid


def _floor_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _window_start(slo: Slo, now: datetime) -> datetime:
    if slo.window_kind == WindowKind.CALENDAR_MONTH:
        start = calendar_month_bounds(now, slo.time_zone)[0]
    else:
        start = now - timedelta(days=slo.window_days)
    return _floor_minute(max(start, now - MAX_BACKFILL))


def _cursor_key(slo: Slo) -> str:
    # Per revision: where an older definition stopped says nothing about the new one.
    return f"slo:promql:cursor:{slo.pk}:{slo.revision}"


def _problem_key(slo_id: int) -> str:
    return f"slo:promql:problem:{slo_id}"


def _fetch_start(slo: Slo, now: datetime, end: datetime) -> datetime:
    """Where this run starts: RESTATE before the end of what the last run read (its newest
    minutes may have been read before all their scrapes landed); the window start when the SLO
    has no rollup (a first run, or rollups deleted by a rebuild: the rows, not the cache, say
    what is filled). The cached cursor only skips minutes that were read and found empty;
    without it the last rollup stands in."""
    floor = _window_start(slo, now)
    last = slo.rollups.order_by("-minute").values_list("minute", flat=True).first()
    cached = cache.get(_cursor_key(slo))  # {"end": datetime, "rows": the SLO had rollups}
    if last is None:
        # Read before and found nothing: carry on. Had rows and now none: they were deleted.
        if cached is None or cached["rows"]:
            return floor
        cursor = cached["end"]
    else:
        cursor = max(last + STEP, cached["end"] if cached else last + STEP)
    return max(floor, min(cursor, end) - RESTATE)


def _range(
    client: PrometheusConnect, which: str, query: str, start: datetime, end: datetime
) -> list[list[Any]]:
    """All samples of `query` at each minute boundary T with start < T ≤ end (T ends the
    minute T - 1 m), in pieces small enough for Prometheus's point limit."""
    samples: list[list[Any]] = []
    first = start + STEP
    while first <= end:
        last = min(end, first + STEP * (MAX_POINTS_PER_QUERY - 1))
        result = _call(client.custom_query_range, query, first, last, "60s")
        samples.extend(_one_series(which, result))
        first = last + STEP
    return samples


def promql_slo_refresh(
    slo: Slo, *, now: datetime | None = None, client: PrometheusConnect | None = None
) -> RefreshResult:
    """Fill the SLO's rollups from Prometheus up to the last complete minute before `now`.

    Raises PrometheusUnreachable when Prometheus is not there (the caller records it); a
    refused or ill-formed query is recorded here and returned in `error`."""
    if client is None:
        own = prometheus_client()
        try:
            return _refresh(slo, now or timezone.now(), own)
        finally:
            if own is not None:
                own.close()
    return _refresh(slo, now or timezone.now(), client)


def _refresh(slo: Slo, now: datetime, client: PrometheusConnect | None) -> RefreshResult:
    outcome = RefreshResult(slo_id=slo.pk)
    if client is None:
        outcome.error = NOT_CONFIGURED
        _problem_set(slo.pk, outcome.error, now)
        return outcome
    if not slo.good_query.strip() or not slo.total_query.strip():
        outcome.error = "This PromQL SLO needs both a good query and a total query."
        _problem_set(slo.pk, outcome.error, now)
        return outcome
    end = _floor_minute(now)  # the minute [end - 1 m, end) is the last complete one
    start = _fetch_start(slo, now, end)
    outcome.start, outcome.end = start, end
    if start >= end:
        return outcome
    try:
        total, invalid_total = _by_minute(_range(client, "total", slo.total_query, start, end))
        good, invalid_good = _by_minute(_range(client, "good", slo.good_query, start, end))
    except PromqlError as exc:
        outcome.error = str(exc)
        logger.warning("PromQL SLO %s: %s", slo.slug, outcome.error)
        _problem_set(slo.pk, outcome.error, now)
        return outcome
    # A minute whose good sample is NaN is unknown, not "0 good": it gets no row either.
    outcome.skipped = len(invalid_total | invalid_good)
    rows = [
        SloRollup(slo=slo, minute=minute, good=min(good.get(minute, 0), count), total=count)
        for minute, count in sorted(total.items())
        if count > 0 and minute not in invalid_good
    ]
    try:
        with transaction.atomic():
            # The fetched minutes are replaced as a whole: what Prometheus says now wins.
            SloRollup.objects.filter(slo=slo, minute__gte=start, minute__lt=end).delete()
            # On conflict, update: a concurrent run for the same SLO (the beat and a refresh
            # queued by an edit) may insert the same minutes between our delete and insert.
            SloRollup.objects.bulk_create(
                rows,
                batch_size=2000,
                update_conflicts=True,
                unique_fields=["slo", "minute"],
                update_fields=["good", "total"],
            )
    except IntegrityError:
        if Slo.objects.filter(pk=slo.pk).exists():
            raise
        return outcome  # deleted while we read Prometheus
    outcome.written = len(rows)
    has_rows = bool(rows) or SloRollup.objects.filter(slo=slo).exists()
    cache.set(_cursor_key(slo), {"end": end, "rows": has_rows}, timeout=None)
    cache.delete(_problem_key(slo.pk))
    return outcome


def promql_refresh_all(*, now: datetime | None = None) -> list[RefreshResult]:
    """Refresh every PromQL SLO (the beat task). One SLO's bad query does not stop the others;
    an unreachable Prometheus stops the run (every SLO would wait for the same timeout) and is
    recorded on each SLO not refreshed."""
    now = now or timezone.now()
    slos = list(Slo.objects.filter(sli=SliKind.PROMQL).order_by("pk"))
    client = prometheus_client()
    results: list[RefreshResult] = []
    try:
        for index, slo in enumerate(slos):
            try:
                results.append(promql_slo_refresh(slo, now=now, client=client))
            except PrometheusUnreachable as exc:
                logger.warning("PromQL SLOs not refreshed: %s", exc)
                for rest in slos[index:]:
                    _problem_set(rest.pk, str(exc), now)
                    results.append(RefreshResult(slo_id=rest.pk, error=str(exc)))
                break
    finally:
        if client is not None:
            client.close()
    return results


def promql_refresh_one(slo_id: int, *, now: datetime | None = None) -> RefreshResult | None:
    """Refresh one PromQL SLO now (after it is created or its queries change, so its page need
    not wait for the beat); None when the SLO is gone or is not a PromQL SLO."""
    now = now or timezone.now()
    slo = Slo.objects.filter(pk=slo_id, sli=SliKind.PROMQL).first()
    if slo is None:
        return None
    client = prometheus_client()
    try:
        return promql_slo_refresh(slo, now=now, client=client)
    except PrometheusUnreachable as exc:
        logger.warning("PromQL SLO %s not refreshed: %s", slo.slug, exc)
        _problem_set(slo.pk, str(exc), now)
        return RefreshResult(slo_id=slo.pk, error=str(exc))
    finally:
        if client is not None:
            client.close()


def promql_rollups_reset(slo: Slo) -> int:
    """Forget what was read for `slo` (its queries or window changed): its rollups are deleted
    and the next refresh reads the whole window again. Returns the rows deleted."""
    deleted, _ = SloRollup.objects.filter(slo=slo).delete()
    cache.delete_many([_cursor_key(slo), _problem_key(slo.pk)])
    return deleted


# ---- what the SLO page shows ----------------------------------------------------------------


def _problem_set(slo_id: int, message: str, now: datetime) -> None:
    cache.set(_problem_key(slo_id), {"message": message, "at": now.isoformat()}, PROBLEM_TTL)


def promql_problem(slo: Slo) -> str | None:
    """Why a PromQL SLO may show no (or stale) data, for its page; None when all is well.

    The last refresh error is kept in Django's cache, which the Celery worker and the web
    processes share (CACHES in settings)."""
    if slo.sli != SliKind.PROMQL:
        return None
    if not settings.PROMETHEUS_URL:
        return NOT_CONFIGURED
    entry = cache.get(_problem_key(slo.pk))
    if entry:
        at = datetime.fromisoformat(entry["at"])
        return f"{entry['message']} (last attempt {at:%Y-%m-%d %H:%M} UTC)"
    cursor = cache.get(_cursor_key(slo))
    if cursor is None:
        if slo.rollups.exists():
            return None
        return NOT_READ_YET
    if not cursor["rows"]:
        return NO_SAMPLES
    return None


# ---- create-time validation -----------------------------------------------------------------


def promql_check(query: str, *, now: datetime | None = None) -> QueryCheck:
    """Ask Prometheus to evaluate `query` as the refresh will (a range query at a 1-minute
    step, over the 10 minutes before `now`), so a form or the API can show a syntax error, a
    range-vector or string expression, or several series, before the SLO is saved.

    Without PROMETHEUS_URL, or when Prometheus is down, the query is accepted with a warning:
    saving an SLO must not depend on Prometheus being up at that moment. A query with no data
    in those 10 minutes is accepted (a quiet service is not an error)."""
    if not query.strip():
        return QueryCheck(errors=["Enter a PromQL query."])
    client = prometheus_client()
    if client is None:
        return QueryCheck(warnings=[f"The query was not checked. {NOT_CONFIGURED}"])
    end = _floor_minute(now or timezone.now())
    try:
        with client:
            result = _call(client.custom_query_range, query, end - 10 * STEP, end, "60s")
    except PromqlError as exc:
        return QueryCheck(errors=[f"Prometheus refused the query: {exc}"])
    except PrometheusUnreachable as exc:
        return QueryCheck(warnings=[f"The query was not checked. {exc}"])
    if len(result) > 1:
        return QueryCheck(errors=[_several_series("The query", result)])
    return QueryCheck()


def promql_validate(query: str, *, now: datetime | None = None) -> list[str]:
    """The errors that must block saving `query` (see promql_check for the warnings)."""
    return promql_check(query, now=now).errors
