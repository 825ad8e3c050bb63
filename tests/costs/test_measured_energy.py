"""Measured GPU energy: DCGM power backfilled into a real Prometheus, integrated by the trapezoid
rule over a closed window and shared across the model's llm_calls by tokens. Figures by hand."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from apps.costs.energy_services import measured_windows_run
from apps.costs.measured import measured_power_config_check, shares, trapezoid_wh
from apps.costs.models import LlmUsage, MeasuredEnergyWindow
from apps.slo.models import SliFact
from tests.costs.conftest import call, ingest
from tests.prometheus import Counter, PrometheusServer, openmetrics_gauges, prometheus_with

pytestmark = pytest.mark.django_db

# A window a few hours back, on a 15-minute boundary, inside a backfilled 2-hour block.
W = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
STEP = 15
SELECTOR = 'DCGM_FI_DEV_POWER_USAGE{model="llama-70b"}'


def _power() -> str:
    """Two GPUs sampled every 15 s from a minute before the window to a minute after: GPU 0
    draws 100 W throughout; GPU 1 200 W up to W+450 s, then 400 W. Their sum: 300 W, then 500 W."""
    times = [W + timedelta(seconds=s) for s in range(-60, 15 * 60 + 61, STEP)]
    gpu0 = Counter({"model": "llama-70b", "gpu": "0"}, [(t, 100.0) for t in times])
    gpu1 = Counter(
        {"model": "llama-70b", "gpu": "1"},
        [(t, 200.0 if t <= W + timedelta(seconds=450) else 400.0) for t in times],
    )
    return openmetrics_gauges("DCGM_FI_DEV_POWER_USAGE", [gpu0, gpu1])


@pytest.fixture(scope="module")
def prometheus() -> Iterator[PrometheusServer]:
    with prometheus_with(_power()) as server:
        yield server


@pytest.fixture
def measured_settings(settings: Any, prometheus: PrometheusServer) -> Any:
    settings.PROMETHEUS_URL = prometheus.url
    settings.COSTS_MEASURED_WINDOW_MINUTES = 15
    settings.COSTS_MEASURED_STEP_SECONDS = STEP
    settings.COSTS_MEASURED_LAG_MINUTES = 10
    settings.COSTS_MEASURED_POWER = [
        {"name": "llama", "provider": "vllm", "model": "llama-3.1-70b*", "selector": SELECTOR},
        {
            "name": "mistral",
            "provider": "vllm",
            "model": "mistral-7b",
            "selector": 'DCGM_FI_DEV_POWER_USAGE{model="mistral"}',
        },
    ]
    return settings


def run() -> list[Any]:
    # now = window end + lag: exactly one window is closed.
    return measured_windows_run(now=W + timedelta(minutes=25), since=W)


def usage(**by_name: str) -> dict[str, LlmUsage]:
    rows = {str(u.event_id): u for u in LlmUsage.objects.all()}
    return {name: rows[event_id] for name, event_id in by_name.items()}


def test_window_energy_is_integrated_and_shared_by_tokens(agent, measured_settings):
    from tests.slo.test_facts import apply, proposal

    llama = "llama-3.1-70b-instruct"
    events = {
        "a": call(
            llama,
            ts=W + timedelta(minutes=1),
            provider="vllm",
            action_id="m1",
            input_tokens=400,
            output_tokens=600,
        ),
        "b": call(llama, ts=W + timedelta(minutes=5), provider="vllm", input_tokens=2000),
        "c": call(
            llama, ts=W + timedelta(minutes=14, seconds=59), provider="vllm", output_tokens=3000
        ),
        "later": call(llama, ts=W + timedelta(minutes=15), provider="vllm", input_tokens=1000),
        "other": call("qwen-7b", ts=W + timedelta(minutes=2), provider="vllm", output_tokens=10),
        "mistral": call(
            "mistral-7b", ts=W + timedelta(minutes=2), provider="vllm", output_tokens=1000
        ),
    }
    ingest(proposal("m1", W, incident=None), *events.values())
    apply()
    estimated_fact = SliFact.objects.get(kind="energy_per_action", subject="m1").value
    # The estimate: (400 x 0.22 + 600 x 0.6) / 1000 x 1.2 = 0.5376 Wh
    assert estimated_fact == Decimal("0.537600")

    results = run()

    # 450 s x 300 W + 15 s x (300 + 500) / 2 + 435 s x 500 W = 358,500 J = 99.583333 Wh
    assert [(r.source, r.status, r.energy_wh, r.calls) for r in results] == [
        ("llama", "measured", Decimal("99.583333"), 3),
        ("mistral", "no_data", None, 1),
    ]
    rows = usage(**{k: v["id"] for k, v in events.items()})
    # 1,000 / 2,000 / 3,000 tokens of 6,000, rounded down; the 0.000001 left goes to c.
    # gCO2e: x 481 g/kWh ("world") / 1000
    assert [(rows[n].energy_wh, rows[n].gco2e, rows[n].energy_source) for n in ("a", "b", "c")] == [
        (Decimal("16.597222"), Decimal("7.983264"), "measured"),
        (Decimal("33.194444"), Decimal("15.966528"), "measured"),
        (Decimal("49.791667"), Decimal("23.949792"), "measured"),
    ]
    for untouched, wh in (("later", "0.264000"), ("other", "0.007200"), ("mistral", "0.720000")):
        assert (rows[untouched].energy_wh, rows[untouched].energy_source) == (
            Decimal(wh),
            "estimated",
        )
    window = MeasuredEnergyWindow.objects.get(source="llama")
    assert (window.samples, window.step_seconds, window.tokens, window.window_end) == (
        61,
        15,
        6000,
        W + timedelta(minutes=15),
    )
    # The action's energy fact now reads the measured figure.
    assert SliFact.objects.get(kind="energy_per_action", subject="m1").value == Decimal("16.597222")


def test_a_rerun_of_a_window_gives_the_same_figures(agent, measured_settings):
    ingest(
        call("llama-3.1-70b-q4", ts=W + timedelta(minutes=3), provider="vllm", input_tokens=7),
    )
    first = run()
    assert run() == []  # integrated windows are not read again
    again = measured_windows_run(now=W + timedelta(minutes=25), since=W, redo=True)
    assert [(r.energy_wh, r.calls) for r in again] == [(r.energy_wh, r.calls) for r in first]
    only = LlmUsage.objects.get()
    assert (only.energy_wh, only.energy_source) == (Decimal("99.583333"), "measured")
    assert MeasuredEnergyWindow.objects.count() == 2


def test_trapezoid_and_shares_by_hand():
    points = [(Decimal(0), Decimal(100)), (Decimal(30), Decimal(200)), (Decimal(90), Decimal(200))]
    # 30 s x 150 W + 60 s x 200 W = 16,500 J = 4.583333… Wh
    assert trapezoid_wh(points).quantize(Decimal("0.000001")) == Decimal("4.583333")
    assert shares(Decimal("1"), [1, 1, 1]) == [
        Decimal("0.333334"),
        Decimal("0.333333"),
        Decimal("0.333333"),
    ]
    assert shares(Decimal("1"), [0, 0]) == [Decimal("0.500000"), Decimal("0.500000")]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ({"model": "x"}, "COSTS_MEASURED_POWER must be a JSON list"),
        ([{"model": "x", "selector": "DCGM_FI_DEV_POWER_USAGE"}], "[0] needs provider."),
        (
            [{"provider": "vllm", "model": "x", "selector": "node_power_watts"}],
            "[0] selector must select DCGM_FI_DEV_POWER_USAGE (watts)",
        ),
        (
            [
                {
                    "provider": "vllm",
                    "model": "x",
                    "selector": "DCGM_FI_DEV_POWER_USAGE",
                    "pue": "0.9",
                }
            ],
            "[0] pue is total facility energy over IT energy: 1 or more.",
        ),
        (
            [
                {
                    "provider": "vllm",
                    "model": "x",
                    "selector": "DCGM_FI_DEV_POWER_USAGE",
                    "region": "mars",
                }
            ],
            "[0] region 'mars' has no grid intensity.",
        ),
    ],
)
def test_bad_measured_power_settings_name_the_entry(items, message):
    with pytest.raises(ValueError) as caught:
        measured_power_config_check(items, grid=["world"])
    assert message in str(caught.value)


def test_the_command_integrates_and_says_what_it_did(agent, measured_settings):
    from io import StringIO

    from django.core.management import call_command

    ingest(call("llama-3.1-70b-q4", ts=W + timedelta(minutes=3), provider="vllm", output_tokens=5))
    out = StringIO()
    call_command("measure_gpu_energy", "--since", W.isoformat(), stdout=out)
    # Every closed window since W, of both sources (how many depends on the clock). Two have
    # power: W's 99.583333 Wh, and the next one, where Prometheus's 5-minute lookback holds the
    # last sample (500 W at W+16:00) until W+21:00: 6 min x 500 W = 50 Wh, with no calls.
    assert re.fullmatch(
        r"\d+ windows: 2 measured \(149\.583333 Wh over 1 llm_calls\), \d+ without power "
        r"samples \(their calls stay estimated\)\.\n",
        out.getvalue(),
    ), out.getvalue()


def test_the_command_says_when_prometheus_is_not_set(settings):
    from django.core.management import CommandError, call_command

    settings.COSTS_MEASURED_POWER = [
        {"provider": "vllm", "model": "x", "selector": "DCGM_FI_DEV_POWER_USAGE"}
    ]
    settings.PROMETHEUS_URL = ""
    with pytest.raises(CommandError, match="PROMETHEUS_URL is not set: measured GPU energy"):
        call_command("measure_gpu_energy")


def test_the_beat_task_integrates_the_last_day_and_survives_a_dead_prometheus(
    agent, measured_settings
):
    from apps.costs.tasks import measured_energy_windows_task

    ingest(call("llama-3.1-70b-q4", ts=W + timedelta(minutes=3), provider="vllm", output_tokens=5))
    result = measured_energy_windows_task()
    # Three windows of the last day have power: W's; the one before it, whose last minute has
    # samples (60 s x 300 W = 5 Wh); the one after it, through the lookback (above).
    assert (result["measured"], result["refreshed_actions"]) == (3, 0)
    assert sorted(
        MeasuredEnergyWindow.objects.filter(status="measured").values_list("energy_wh", flat=True)
    ) == [Decimal("5.000000"), Decimal("50.000000"), Decimal("99.583333")]
    assert LlmUsage.objects.get().energy_source == "measured"
    assert measured_energy_windows_task()["windows"] == 0  # nothing left to integrate

    measured_settings.PROMETHEUS_URL = "http://127.0.0.1:9"  # nothing listens there
    MeasuredEnergyWindow.objects.all().delete()
    assert measured_energy_windows_task() == {"windows": 0, "failed": 1}
    assert not MeasuredEnergyWindow.objects.exists()
