"""Multi-window multi-burn-rate alerts: factors, lifecycle, de-duplication, notifications."""

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from apps.fleet.models import Agent
from apps.notifications.models import Notification, WebhookPost
from apps.slo.alerts import rule_factor
from apps.slo.evaluate import slo_evaluate
from apps.slo.models import Slo, SloAlert
from apps.slo.windows import ALERT_RULES, burn_factor
from tests.slo.test_evaluate import NOW, make_slo, rollup, utc


def test_factors_for_30_days() -> None:
    period = timedelta(days=30)
    assert [burn_factor(period, r) for r in ALERT_RULES] == [
        Decimal("14.4"),
        Decimal("6"),
        Decimal("3"),
        Decimal("1"),
    ]
    assert [str(rule_factor(period, r)) for r in ALERT_RULES] == [
        "14.4000",
        "6.0000",
        "3.0000",
        "1.0000",
    ]


def test_factors_for_28_days() -> None:
    period = timedelta(days=28)
    assert [str(rule_factor(period, r)) for r in ALERT_RULES] == [
        "13.4400",
        "5.6000",
        "2.8000",
        "0.9333",
    ]


def test_factors_for_a_dst_november_in_new_york() -> None:
    # 30 days and 1 hour: 721 h.
    period = timedelta(days=30, hours=1)
    assert [str(rule_factor(period, r)) for r in ALERT_RULES] == [
        "14.4200",
        "6.0083",
        "3.0042",
        "1.0014",
    ]


@pytest.fixture
def people(make_person: Any) -> dict[str, Any]:
    return {
        "olga": make_person("olga"),  # the SLO's owner, no role needed
        "sam": make_person("sam", "sre_lead"),
        "ada": make_person("ada"),  # owns the agent
        "vera": make_person("vera", "viewer"),  # not concerned
    }


@pytest.fixture
def paging_slo(agent: Agent, people: dict[str, Any]) -> Slo:
    slo = make_slo(scope="agent", agent=agent)
    slo.owners.add(people["olga"])
    agent.owners.add(people["ada"])
    # A quiet day 5 hours ago, then 20 % errors two minutes ago: only page 1h/5m fires
    # (5m, 30m, 1h: 20/100 / 0.01 = 20 > 14.4; 6h: 70/100100 / 0.01 = 0.0699).
    rollup(slo, utc(2026, 11, 26, 7, 0), 99950, 100000)
    rollup(slo, utc(2026, 11, 26, 11, 58), 80, 100)
    return slo


def notifications() -> list[tuple[str, str, str]]:
    return sorted(
        Notification.objects.values_list("recipient__username", "kind", "title").order_by()
    )


def test_alert_opens_updates_and_resolves(paging_slo: Slo) -> None:
    status = slo_evaluate(paging_slo, now=NOW)
    assert status.state == "critical"
    assert status.burn_rates["6h"] == 0.0699
    alert = SloAlert.objects.get()
    assert (alert.severity, alert.long_window, alert.short_window) == ("page", "1h", "5m")
    assert alert.factor == Decimal("14.4000")
    assert alert.started_at == NOW
    assert (alert.last_burn_rate, alert.peak_burn_rate) == (Decimal("20.0000"), Decimal("20"))
    assert alert.resolved_at is None
    title = "Page: Triage accuracy burns its error budget at 20x (1h/5m)"
    assert notifications() == [
        ("ada", "slo_alert", title),
        ("olga", "slo_alert", title),
        ("sam", "slo_alert", title),
    ]
    assert Notification.objects.first().body == (  # type: ignore[union-attr]
        "Burn rate 20x over 1h and 20x over 5m, both above 14.4x (2 % of the "
        "period's budget in 1h). Objective 0.99."
    )

    # A minute later it burns harder: same alert, higher last and peak, no new notice.
    later = NOW + timedelta(minutes=1)
    rollup(paging_slo, utc(2026, 11, 26, 12, 1), 50, 100)  # 5m: 70/200 / 0.01 = 35
    slo_evaluate(paging_slo, now=later)
    alert.refresh_from_db()
    assert (alert.last_burn_rate, alert.peak_burn_rate) == (Decimal("35"), Decimal("35"))
    assert SloAlert.objects.count() == 1
    assert Notification.objects.count() == 3

    # Then the errors stop: 5m holds only good events, the rule stops firing.
    rollup(paging_slo, utc(2026, 11, 26, 12, 8), 100, 100)
    resolved_at = NOW + timedelta(minutes=8)
    status = slo_evaluate(paging_slo, now=resolved_at)
    assert status.burn_rates["5m"] == 0.0
    assert status.state == "ok"
    alert.refresh_from_db()
    assert alert.resolved_at == resolved_at
    assert (alert.last_burn_rate, alert.peak_burn_rate) == (Decimal("35"), Decimal("35"))
    resolved = [n for n in notifications() if n[1] == "slo_alert_resolved"]
    assert resolved == [
        ("ada", "slo_alert_resolved", "Resolved: Triage accuracy (1h/5m)"),
        ("olga", "slo_alert_resolved", "Resolved: Triage accuracy (1h/5m)"),
        ("sam", "slo_alert_resolved", "Resolved: Triage accuracy (1h/5m)"),
    ]
    assert Notification.objects.filter(kind="slo_alert_resolved").first().body == (  # type: ignore[union-attr]
        "Burn rate back under 14.4x after 8 min; peak 35x."
    )

    # Evaluating again changes nothing; a new burst opens a new alert.
    slo_evaluate(paging_slo, now=resolved_at)
    assert Notification.objects.count() == 6
    rollup(paging_slo, utc(2026, 11, 26, 12, 9), 0, 100)
    slo_evaluate(paging_slo, now=NOW + timedelta(minutes=9))
    assert list(SloAlert.objects.order_by("started_at").values_list("resolved_at", flat=True)) == [
        resolved_at,
        None,
    ]


def test_evaluating_twice_opens_one_alert_and_notifies_once(paging_slo: Slo) -> None:
    slo_evaluate(paging_slo, now=NOW)
    slo_evaluate(paging_slo, now=NOW)
    assert SloAlert.objects.count() == 1
    assert Notification.objects.filter(kind="slo_alert").count() == 3


def test_alerting_off_records_alerts_without_notifying(paging_slo: Slo) -> None:
    paging_slo.alerting = False
    paging_slo.save()
    assert slo_evaluate(paging_slo, now=NOW).state == "critical"
    assert SloAlert.objects.count() == 1
    assert Notification.objects.count() == 0


def test_channels_follow_the_slo(paging_slo: Slo) -> None:
    paging_slo.notify_in_app = False
    paging_slo.notify_webhook = True
    paging_slo.webhook_url = "https://hooks.example.test/T1/B2"
    paging_slo.save()
    slo_evaluate(paging_slo, now=NOW)
    assert Notification.objects.count() == 0
    post = WebhookPost.objects.get()
    assert post.url == "https://hooks.example.test/T1/B2"
    assert post.dedup_key == f"slo_alert:{SloAlert.objects.get().pk}:firing"
    assert post.payload["text"].startswith(
        "Page: Triage accuracy burns its error budget at 20x (1h/5m)\nBurn rate 20x"
    )


def test_team_slo_does_not_notify_agent_owners(
    team: Any, agent: Agent, people: dict[str, Any]
) -> None:
    agent.owners.add(people["ada"])
    slo = make_slo(scope="team", team=team)
    rollup(slo, utc(2026, 11, 26, 11, 58), 0, 10)
    slo_evaluate(slo, now=NOW)
    assert {n[0] for n in notifications()} == {"sam"}
    # Every rule fires at a 100 % error ratio (burn 100): two pages and two tickets.
    assert sorted(SloAlert.objects.values_list("severity", "long_window")) == [
        ("page", "1h"),
        ("page", "6h"),
        ("ticket", "1d"),
        ("ticket", "3d"),
    ]


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs real row locks and concurrent connections"
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_evaluations_open_one_alert(make_person: Any, team: Any) -> None:
    sam = make_person("sam", "sre_lead")
    slo = make_slo()
    slo.owners.add(sam)
    rollup(slo, utc(2026, 11, 26, 11, 58), 0, 10)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            own = Slo.objects.get(pk=slo.pk)
            barrier.wait(timeout=10)
            slo_evaluate(own, now=NOW)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert SloAlert.objects.filter(resolved_at__isnull=True).count() == 4
    assert SloAlert.objects.count() == 4
    # One notice per alert for the one SRE lead, whoever won each insert.
    assert Notification.objects.filter(kind="slo_alert").count() == 4
