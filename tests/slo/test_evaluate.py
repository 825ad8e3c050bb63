"""SLO evaluation against hand-computed rollups (inserted directly, no facts)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.fleet.models import Agent, Team
from apps.slo.evaluate import (
    slo_evaluate,
    slo_period,
    slo_window_bounds,
    slos_evaluate_all,
    window_counts,
)
from apps.slo.models import Slo, SloRollup, SloStatus

NOW = datetime(2026, 11, 26, 12, 0, 30, tzinfo=UTC)
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def make_slo(slug: str = "triage-accuracy", **fields: Any) -> Slo:
    values: dict[str, Any] = {
        "name": "Triage accuracy",
        "sli": "accuracy",
        "scope": "all",
        "objective": Decimal("0.99"),
        "window_days": 30,
        "notify_in_app": True,
    }
    values.update(fields)
    return Slo.objects.create(slug=slug, **values)


def rollup(slo: Slo, minute: datetime, good: int, total: int) -> SloRollup:
    return SloRollup.objects.create(slo=slo, minute=minute, good=good, total=total)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def slo(db: Any) -> Slo:
    return make_slo()


def test_rolling_window_is_whole_minutes_ending_after_the_minute_of_now(slo: Slo) -> None:
    slo.window_days = 28
    assert slo_window_bounds(slo, NOW) == (utc(2026, 10, 29, 12, 1), utc(2026, 11, 26, 12, 1))
    assert slo_period(slo, NOW) == timedelta(days=28)


def test_window_counts_include_the_start_minute_and_exclude_the_end(slo: Slo) -> None:
    start, end = slo_window_bounds(slo, NOW)  # 30 days: 2026-10-27 12:01 .. 2026-11-26 12:01
    rollup(slo, start - timedelta(minutes=1), 1, 7)  # one minute too old
    rollup(slo, start, 2, 3)  # exactly at the start: in
    rollup(slo, utc(2026, 11, 26, 12, 0), 5, 5)  # the minute holding now: in
    rollup(slo, end, 11, 13)  # exactly at the end: out
    assert window_counts(slo, start, end) == (7, 8)
    status = slo_evaluate(slo, now=NOW)
    assert (status.good, status.total) == (7, 8)
    assert status.window_start == start
    assert status.sli == Decimal("0.875000")
    # 1 bad of 8 allowed 0.08: 1 - 1/0.08 = -11.5
    assert status.budget_remaining == Decimal("-11.500000")


def test_when_now_is_on_a_minute_the_window_is_exactly_now_minus_its_length(slo: Slo) -> None:
    now = utc(2026, 11, 26, 12, 0)
    assert slo_window_bounds(slo, now) == (utc(2026, 10, 27, 12, 0), now)
    rollup(slo, utc(2026, 10, 27, 11, 59), 0, 100)  # before the start: out
    rollup(slo, utc(2026, 10, 27, 12, 0), 1, 2)  # exactly now - 30 days: in
    rollup(slo, utc(2026, 11, 26, 11, 59), 3, 3)  # the last minute before now: in
    rollup(slo, now, 0, 50)  # events at or after now: out
    status = slo_evaluate(slo, now=now)
    assert (status.good, status.total) == (4, 5)
    assert status.window_start == utc(2026, 10, 27, 12, 0)
    assert status.burn_rates["5m"] == 0.0  # 11:55 .. 11:59
    # The sparkline's last hour is the one holding the window's last minute (11:00).
    assert status.sparkline[-1] == ["2026-11-26T11:00:00+00:00", 1.0]


def test_empty_window_has_no_data(slo: Slo) -> None:
    rollup(slo, NOW - timedelta(days=31), 1, 2)  # before the window: ignored
    status = slo_evaluate(slo, now=NOW)
    assert (status.good, status.total) == (0, 0)
    assert status.sli is None
    assert status.budget_remaining is None
    assert status.burn_rates == dict.fromkeys(WINDOWS)
    assert status.worst_burn_rate is None
    assert status.state == "no_data"
    assert len(status.sparkline) == 24
    assert all(value is None for _, value in status.sparkline)


def test_no_errors_burns_nothing_and_keeps_the_whole_budget(slo: Slo) -> None:
    rollup(slo, utc(2026, 11, 26, 11, 58), 40, 40)
    status = slo_evaluate(slo, now=NOW)
    assert status.sli == Decimal("1.000000")
    assert status.budget_remaining == Decimal("1.000000")
    assert status.burn_rates == dict.fromkeys(WINDOWS, 0.0)
    assert status.worst_burn_rate == Decimal("0.0000")
    assert status.state == "ok"


def test_ticket_burn_gives_warning_with_exact_burn_rates_and_sparkline(slo: Slo) -> None:
    # 20 h ago: 50 bad of 1000; 1 h 30 min ago: 4 bad of 100. Objective 0.99, 30 days.
    rollup(slo, utc(2026, 11, 25, 16, 0), 950, 1000)
    rollup(slo, utc(2026, 11, 26, 10, 30), 96, 100)
    status = slo_evaluate(slo, now=NOW)
    assert (status.good, status.total) == (1046, 1100)
    assert status.sli == Decimal("0.950909")  # 1046 / 1100 = 0.9509090…
    # 54 bad of 11 allowed: 1 - 54/11 = -3.909090…
    assert status.budget_remaining == Decimal("-3.909091")
    assert status.burn_rates == {
        "5m": None,
        "30m": None,
        "1h": None,
        "2h": 4.0,  # 4/100 / 0.01
        "6h": 4.0,
        "1d": 4.9091,  # 54/1100 / 0.01 = 4.90909…
        "3d": 4.9091,
    }
    assert status.worst_burn_rate == Decimal("4.9091")
    # Ticket 1d/2h (3x) and 3d/6h (1x) fire; no page rule has data in its short window.
    assert status.state == "warning"
    assert status.sparkline[0] == ["2026-11-25T13:00:00+00:00", None]
    assert status.sparkline[3] == ["2026-11-25T16:00:00+00:00", 0.95]
    assert status.sparkline[21] == ["2026-11-26T10:00:00+00:00", 0.96]
    assert status.sparkline[23] == ["2026-11-26T12:00:00+00:00", None]
    assert sum(1 for _, v in status.sparkline if v is not None) == 2


def test_page_burn_is_critical(slo: Slo) -> None:
    rollup(slo, utc(2026, 11, 26, 11, 58), 80, 100)  # 20 % errors in the last 5 minutes
    status = slo_evaluate(slo, now=NOW)
    assert status.burn_rates["5m"] == 20.0
    assert status.burn_rates["1h"] == 20.0
    assert status.state == "critical"


def test_burn_windows_end_with_the_minute_of_now(slo: Slo) -> None:
    # 5 m = the minute holding now and the four before it (11:56 .. 12:00).
    rollup(slo, utc(2026, 11, 26, 11, 55), 0, 10)  # just outside 5 m
    rollup(slo, utc(2026, 11, 26, 11, 56), 9, 10)  # first minute of 5 m
    status = slo_evaluate(slo, now=NOW)
    assert status.burn_rates["5m"] == 10.0  # 1/10 / 0.01
    assert status.burn_rates["30m"] == 55.0  # 11/20 / 0.01


def test_calendar_month_in_new_york_follows_local_midnight_and_dst(slo: Slo) -> None:
    slo.window_kind = "calendar_month"
    slo.time_zone = "America/New_York"
    slo.save()
    now = utc(2026, 11, 15, 12, 0)
    # November starts at 04:00 UTC (EDT) and ends at 05:00 UTC on 1 December (EST).
    assert slo_window_bounds(slo, now) == (utc(2026, 11, 1, 4, 0), utc(2026, 11, 15, 12, 0))
    assert slo_period(slo, now) == timedelta(days=30, hours=1)
    rollup(slo, utc(2026, 11, 1, 3, 59), 0, 9)  # 31 October 23:59 in New York: out
    rollup(slo, utc(2026, 11, 1, 4, 0), 3, 4)  # 1 November 00:00 in New York: in
    rollup(slo, utc(2026, 12, 1, 4, 59), 1, 1)  # 30 November 23:59 EST: in at month end
    rollup(slo, utc(2026, 12, 1, 5, 0), 0, 5)  # December: out
    assert (slo_evaluate(slo, now=now).good, SloStatus.objects.get().total) == (3, 4)
    month_end = utc(2026, 12, 1, 4, 59, 30)
    start, end = slo_window_bounds(slo, month_end)
    assert (start, end) == (utc(2026, 11, 1, 4, 0), utc(2026, 12, 1, 5, 0))
    status = slo_evaluate(slo, now=month_end)
    assert (status.good, status.total) == (4, 5)
    assert status.window_start == utc(2026, 11, 1, 4, 0)


def test_one_query_reads_the_rollups_for_every_window(slo: Slo) -> None:
    rollup(slo, utc(2026, 11, 26, 11, 58), 99, 100)
    with CaptureQueriesContext(connection) as ctx:
        slo_evaluate(slo, now=NOW)
    rollup_queries = [q["sql"] for q in ctx.captured_queries if "slo_slorollup" in q["sql"]]
    assert len(rollup_queries) == 1


def test_evaluating_again_updates_the_one_status_row(slo: Slo) -> None:
    rollup(slo, utc(2026, 11, 26, 11, 58), 99, 100)
    slo_evaluate(slo, now=NOW)
    rollup(slo, utc(2026, 11, 26, 11, 59), 100, 100)
    status = slo_evaluate(slo, now=NOW + timedelta(minutes=1))
    assert SloStatus.objects.count() == 1
    assert (status.good, status.total) == (199, 200)
    assert status.evaluated_at == NOW + timedelta(minutes=1)


def test_evaluate_all_counts_every_slo(db: Any) -> None:
    team = Team.objects.create(slug="sre", name="SRE")
    agent = Agent.objects.create(slug="k8s-healer", team=team)
    make_slo("a")
    make_slo("b", scope="team", team=team)
    make_slo("c", scope="agent", agent=agent, sli="rollback")
    assert slos_evaluate_all(now=NOW) == 3
    assert sorted(SloStatus.objects.values_list("slo__slug", "state")) == [
        ("a", "no_data"),
        ("b", "no_data"),
        ("c", "no_data"),
    ]


def test_a_quiet_slo_costs_a_fixed_handful_of_queries(slo: Slo) -> None:
    rollup(slo, utc(2026, 11, 26, 11, 58), 99, 100)
    slo_evaluate(slo, now=NOW)
    with CaptureQueriesContext(connection) as ctx:
        slo_evaluate(slo, now=NOW + timedelta(minutes=1))
    sql = [q["sql"].split(" ")[0] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]
    # Rollups (one aggregate), open alerts (one read), the status row (locked read, update).
    assert sql == ["SELECT", "SELECT", "SELECT", "UPDATE"]


def test_a_late_event_in_an_old_minute_counts_at_the_next_evaluation(slo: Slo) -> None:
    rollup(slo, utc(2026, 11, 26, 11, 0), 10, 10)
    assert slo_evaluate(slo, now=NOW).sli == Decimal("1.000000")
    # An event for 09:00 arrives after 11:00 was counted (the rollup writer adds its minute).
    rollup(slo, utc(2026, 11, 26, 9, 0), 0, 2)
    status = slo_evaluate(slo, now=NOW)
    assert (status.good, status.total) == (10, 12)
    assert status.burn_rates["1h"] is None
    assert status.burn_rates["6h"] == 16.6667  # 2/12 / 0.01


def test_one_failing_slo_does_not_stop_the_others(db: Any, caplog: Any) -> None:
    make_slo("a", window_kind="calendar_month", time_zone="Europe/Paris")
    make_slo("b")
    make_slo("c", window_kind="calendar_month", time_zone="America/New_York")
    # A zone the validation accepted once and the installed tz database no longer knows (or a
    # hand-edited row): evaluating "a" raises, its neighbours must still be evaluated.
    Slo.objects.filter(slug="a").update(time_zone="Mars/Olympus_Mons")
    assert slos_evaluate_all(now=NOW) == 2
    assert sorted(SloStatus.objects.values_list("slo__slug", "state")) == [
        ("b", "no_data"),
        ("c", "no_data"),
    ]
    [failure] = [r for r in caplog.records if r.getMessage() == "evaluating SLO a failed"]
    assert failure.levelname == "ERROR"
    assert failure.exc_info is not None
    assert "Mars/Olympus_Mons" in str(failure.exc_info[1])


def test_beat_runs_evaluate_all_every_minute(slo: Slo, settings: Any) -> None:
    from apps.slo.tasks import slos_evaluate_all_task

    assert settings.CELERY_BEAT_SCHEDULE["slo-evaluate-all"] == {
        "task": "slo.evaluate_all",
        "schedule": 60.0,
    }
    assert slos_evaluate_all_task.name == "slo.evaluate_all"
    assert slos_evaluate_all_task.run() == 1
    assert SloStatus.objects.get().state == "no_data"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_second_run_skips_while_one_is_running() -> None:
    import threading

    from apps.slo.evaluate import EVALUATE_ALL_LOCK

    make_slo("a")
    held, release = threading.Event(), threading.Event()

    def other_run() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", [EVALUATE_ALL_LOCK])
                held.set()
                release.wait(timeout=30)
                cursor.execute("SELECT pg_advisory_unlock(%s)", [EVALUATE_ALL_LOCK])
        finally:
            connection.close()

    thread = threading.Thread(target=other_run)
    thread.start()
    try:
        assert held.wait(timeout=10)
        assert slos_evaluate_all(now=NOW) == 0
        assert not SloStatus.objects.exists()
    finally:
        release.set()
        thread.join(timeout=30)
    assert slos_evaluate_all(now=NOW) == 1
