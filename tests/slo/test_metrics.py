"""/metrics: exact Prometheus text lines, one query, and who may scrape."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from apps.fleet.models import Agent
from apps.slo.evaluate import slo_evaluate
from apps.slo.metrics import REGISTRY
from tests.slo.test_evaluate import NOW, make_slo, rollup, utc

TOKEN = "scrape-token-0123456789abcdef0123456789"
A = {
    "slo": "triage-accuracy",
    "sli": "accuracy",
    "scope": "agent",
    "team": "platform",
    "agent": "triage-bot",
}
B = {"slo": "fleet-acceptance", "sli": "acceptance", "scope": "all", "team": "", "agent": ""}


def sample(name: str, base: dict[str, str], value: str, **extra: str) -> str:
    """One exposition line; prometheus_client writes labels in alphabetical order."""
    labels = ",".join(f'{k}="{v}"' for k, v in sorted({**base, **extra}.items()))
    return f"{name}{{{labels}}} {value}"


def rule(severity: str, long_window: str, short_window: str) -> dict[str, str]:
    return {"severity": severity, "long_window": long_window, "short_window": short_window}


@pytest.fixture
def evaluated(agent: Agent) -> None:
    paging = make_slo(scope="agent", agent=agent)
    rollup(paging, utc(2026, 11, 26, 7, 0), 99950, 100000)
    rollup(paging, utc(2026, 11, 26, 11, 58), 80, 100)
    slo_evaluate(paging, now=NOW)
    quiet = make_slo(
        "fleet-acceptance",
        name="Acceptance",
        sli="acceptance",
        objective=Decimal("0.95"),
        window_days=28,
    )
    slo_evaluate(quiet, now=NOW)


def scrape(client: Client, **headers: str) -> Any:
    return client.get("/metrics", **headers)


def lines(response: Any) -> list[str]:
    return response.content.decode().splitlines()


@pytest.fixture
def token(settings: Any) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def test_exposes_slo_figures_with_conventional_names(
    evaluated: None, token: str, client: Client
) -> None:
    response = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = [line for line in lines(response) if not line.startswith("#")]
    assert samples == [
        sample("opsdash_slo_info", B, "1.0", window="28d"),
        sample("opsdash_slo_info", A, "1.0", window="30d"),
        # 100030 good of 100100: 0.9993007…
        sample("opsdash_slo_sli_ratio", A, "0.999301"),
        sample("opsdash_slo_objective_ratio", B, "0.95"),
        sample("opsdash_slo_objective_ratio", A, "0.99"),
        # 70 bad of 1001 allowed: 1 - 70/1001 = 0.9300699…
        sample("opsdash_slo_error_budget_remaining_ratio", A, "0.93007"),
        sample("opsdash_slo_burn_rate", A, "20.0", window="5m"),
        sample("opsdash_slo_burn_rate", A, "20.0", window="30m"),
        sample("opsdash_slo_burn_rate", A, "20.0", window="1h"),
        sample("opsdash_slo_burn_rate", A, "20.0", window="2h"),
        sample("opsdash_slo_burn_rate", A, "0.0699", window="6h"),
        sample("opsdash_slo_burn_rate", A, "0.0699", window="1d"),
        sample("opsdash_slo_burn_rate", A, "0.0699", window="3d"),
        sample("opsdash_slo_burn_rate_threshold", B, "13.44", **rule("page", "1h", "5m")),
        sample("opsdash_slo_burn_rate_threshold", B, "5.6", **rule("page", "6h", "30m")),
        sample("opsdash_slo_burn_rate_threshold", B, "2.8", **rule("ticket", "1d", "2h")),
        sample("opsdash_slo_burn_rate_threshold", B, "0.9333", **rule("ticket", "3d", "6h")),
        sample("opsdash_slo_burn_rate_threshold", A, "14.4", **rule("page", "1h", "5m")),
        sample("opsdash_slo_burn_rate_threshold", A, "6.0", **rule("page", "6h", "30m")),
        sample("opsdash_slo_burn_rate_threshold", A, "3.0", **rule("ticket", "1d", "2h")),
        sample("opsdash_slo_burn_rate_threshold", A, "1.0", **rule("ticket", "3d", "6h")),
        sample("opsdash_slo_alert_firing", B, "0.0", **rule("page", "1h", "5m")),
        sample("opsdash_slo_alert_firing", B, "0.0", **rule("page", "6h", "30m")),
        sample("opsdash_slo_alert_firing", B, "0.0", **rule("ticket", "1d", "2h")),
        sample("opsdash_slo_alert_firing", B, "0.0", **rule("ticket", "3d", "6h")),
        sample("opsdash_slo_alert_firing", A, "1.0", **rule("page", "1h", "5m")),
        sample("opsdash_slo_alert_firing", A, "0.0", **rule("page", "6h", "30m")),
        sample("opsdash_slo_alert_firing", A, "0.0", **rule("ticket", "1d", "2h")),
        sample("opsdash_slo_alert_firing", A, "0.0", **rule("ticket", "3d", "6h")),
        sample("opsdash_slo_window_events", B, "0.0", kind="good"),
        sample("opsdash_slo_window_events", B, "0.0", kind="total"),
        sample("opsdash_slo_window_events", A, "100030.0", kind="good"),
        sample("opsdash_slo_window_events", A, "100100.0", kind="total"),
        # 2026-11-26T12:00:30Z is 1795694430 s, written in Go's exponent form.
        sample("opsdash_slo_evaluated_timestamp_seconds", B, "1.79569443e+09"),
        sample("opsdash_slo_evaluated_timestamp_seconds", A, "1.79569443e+09"),
    ]
    assert "# TYPE opsdash_slo_burn_rate gauge" in lines(response)
    assert "# HELP opsdash_slo_sli_ratio Good events / total events over the SLO window." in lines(
        response
    )


def test_one_query_per_scrape(evaluated: None, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        REGISTRY.collect()
        list(REGISTRY.collect())


def test_without_a_token_metrics_are_closed_unless_debug(
    evaluated: None, client: Client, settings: Any
) -> None:
    settings.METRICS_TOKEN = ""
    response = scrape(client)
    assert response.status_code == 403
    assert response.content.decode() == (
        "/metrics is closed: set METRICS_TOKEN (or METRICS_TOKEN_FILE) and give Prometheus that "
        "bearer token, or sign in with a role to read it.\n"
    )
    settings.DEBUG = True
    assert scrape(client).status_code == 200


def test_with_a_token_the_scraper_must_send_it(
    evaluated: None, token: str, client: Client, settings: Any
) -> None:
    settings.DEBUG = True  # the token wins over DEBUG
    missing = scrape(client)
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="opsdash metrics"'
    assert missing.content.decode() == (
        "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.\n"
    )
    assert scrape(client, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert scrape(client, HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    assert scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_a_signed_in_viewer_may_read_it(
    evaluated: None, token: str, client: Client, viewer: Any, outsider: Any
) -> None:
    client.force_login(outsider)  # no role
    assert scrape(client).status_code == 401
    client.force_login(viewer)
    response = scrape(client)
    assert response.status_code == 200
    assert sample("opsdash_slo_objective_ratio", A, "0.99") in lines(response)


def test_no_slos_no_samples(db: Any, token: str, client: Client) -> None:
    response = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert [line for line in lines(response) if not line.startswith("#")] == []


def test_calendar_month_thresholds_use_that_months_length(
    agent: Agent, token: str, client: Client
) -> None:
    slo = make_slo(window_kind="calendar_month", time_zone="America/New_York")
    slo_evaluate(slo, now=utc(2026, 11, 15, 12, 0) + timedelta(seconds=1))
    text = lines(scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    labels = {"slo": "triage-accuracy", "sli": "accuracy", "scope": "all", "team": "", "agent": ""}
    assert sample("opsdash_slo_info", labels, "1.0", window="calendar_month") in text
    threshold = sample(
        "opsdash_slo_burn_rate_threshold", labels, "14.42", **rule("page", "1h", "5m")
    )
    assert threshold in text
