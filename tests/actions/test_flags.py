"""Hallucination flags: exact messages for each kind, and the cases that must stay quiet."""

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.template.loader import render_to_string

from apps.actions.flags import Flag, FlagKind, actions_flags
from apps.actions.models import Action
from apps.audit.canonical import encode_json
from apps.audit.models import EventSource
from apps.audit.services.ingest import ALL_TYPES, agent_lookup_cache, event_batch_ingest
from tests.conftest import event

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _ingest(items: list[dict[str, Any]]) -> None:
    result = event_batch_ingest(
        items=[encode_json(i) for i in items],
        source=EventSource.IMPORT,
        allowed_types=ALL_TYPES,
        agents_by_slug=agent_lookup_cache(),
    )
    assert not result.rejected, result.rejected


def alert(minutes: float = 0, *, action_id: str | None = "act-1", **data: Any) -> dict[str, Any]:
    body = {"name": "HighErrorRate", "severity": "high", "source": "alertmanager"}
    body.update(data)
    fields = {"incident_id": "INC-1"}
    if action_id:
        fields["action_id"] = action_id
    return event(type="alert", ts=at(minutes), data=body, **fields)


def context(minutes: float = 1, *, action_id: str | None = "act-1", **data: Any) -> dict[str, Any]:
    body = {"source": "loki", "query": "api errors last 30m", "summary": "214 lines about api"}
    body.update(data)
    fields = {"incident_id": "INC-1"}
    if action_id:
        fields["action_id"] = action_id
    return event(type="context", ts=at(minutes), data=body, **fields)


def proposal(
    minutes: float = 5,
    *,
    action_id: str = "act-1",
    rationale: str = "api pods crash looping after the last rollout",
    citations: list[Any] | None = None,
    confidence: float = 0.9,
) -> dict[str, Any]:
    return event(
        type="proposal",
        ts=at(minutes),
        action_id=action_id,
        incident_id="INC-1",
        data={
            "action_type": "k8s.restart_deployment",
            "target": "k8s://prod/payments/api",
            "risk": "medium",
            "confidence": confidence,
            "rationale": rationale,
            "citations": citations or [],
        },
    )


def flags_of(action_id: str = "act-1") -> list[Flag]:
    action = Action.objects.get(action_id=action_id)
    return actions_flags([action])[action_id]


# --- a. citations -------------------------------------------------------------------------------


def test_flags_a_cited_log_line_that_no_context_event_contains(agent):
    _ingest(
        [
            alert(0),
            context(1, summary='level=error msg="upstream connect error" service=api'),
            proposal(citations=['level=error msg="disk full" service=api']),
        ]
    )
    assert flags_of() == [
        Flag(
            FlagKind.CITATION,
            'Cites log line "level=error msg="disk full" service=api", which appears in none '
            "of the 2 context events.",
            "Checked 1 citation against 2 context events of this action and its incident "
            "(sources, URIs, queries, summaries and data; LLM answers excluded).",
        )
    ]


def test_a_cited_log_line_found_in_a_tool_result_or_summary_raises_nothing(agent):
    _ingest(
        [
            alert(0),
            context(1, summary='12:01 level=error msg="upstream connect error" service=api'),
            event(
                type="tool_call",
                ts=at(2),
                action_id="act-1",
                data={"tool": "kubectl_get", "result": {"stdout": "api-7d9f  CrashLoopBackOff"}},
            ),
            proposal(
                citations=[
                    'level=error  msg="upstream connect error"   service=api',  # spacing differs
                    {"source": "kubectl", "line": "api-7d9f  CrashLoopBackOff"},
                ]
            ),
        ]
    )
    assert flags_of() == []


def test_files_and_resources_match_context_uris_without_scheme_or_line_number(agent):
    _ingest(
        [
            alert(0),
            context(1, source="file", uri="file:///var/log/nginx/error.log"),
            context(2, source="kubectl describe", uri="k8s://prod/payments/api/pods"),
            proposal(
                citations=[
                    "/var/log/nginx/error.log:1042",
                    {"uri": "k8s://prod/payments/api"},
                    {"source": "Kubectl Describe", "ref": "pods"},
                ]
            ),
        ]
    )
    assert flags_of() == []


def test_flags_a_file_and_a_source_nobody_read_and_says_what_was_not_checkable(agent):
    _ingest(
        [
            alert(0),
            context(1),
            proposal(
                citations=[
                    {"path": "/etc/payments/config.yaml", "line": 12},
                    {"source": "splunk", "ref": "api errors"},
                    "the runbook says a restart is safe",
                ]
            ),
        ]
    )
    checked = (
        "Checked 2 of 3 citations against 2 context events of this action and its incident "
        "(sources, URIs, queries, summaries and data; LLM answers excluded); "
        "1 free-text citation cannot be checked."
    )
    assert flags_of() == [
        Flag(
            FlagKind.CITATION,
            'Cites file "/etc/payments/config.yaml", which appears in none of the 2 context events.',
            checked,
        ),
        Flag(
            FlagKind.CITATION,
            'Cites source "splunk", which appears in none of the 2 context events.',
            checked,
        ),
    ]


def test_a_line_only_the_model_wrote_is_not_evidence(agent):
    _ingest(
        [
            alert(0),
            event(
                type="llm_call",
                ts=at(2),
                action_id="act-1",
                data={
                    "model": "claude-sonnet-4-5",
                    "input_tokens": 10,
                    "output_tokens": 10,
                    "latency_ms": 100,
                    "request": 'Logs: level=warn msg="retrying request" service=api',
                    "response": 'I see level=error msg="OOMKilled" container=api',
                },
            ),
            proposal(
                citations=[
                    'level=warn msg="retrying request" service=api',  # the model was shown it
                    'level=error msg="OOMKilled" container=api',  # the model said it
                ]
            ),
        ]
    )
    assert [f.message for f in flags_of()] == [
        'Cites log line "level=error msg="OOMKilled" container=api", which appears in none of '
        "the 2 context events."
    ]


def test_context_of_the_same_incident_counts_but_not_other_incidents(agent):
    _ingest(
        [
            alert(0),
            # Read by another action of the same incident.
            context(1, action_id="act-other", uri="s3://logs/payments/2026-11-20.log"),
            event(
                type="context",
                ts=at(1),
                incident_id="INC-2",
                data={"source": "loki", "uri": "s3://logs/ledger/2026-11-20.log"},
            ),
            proposal(
                citations=["s3://logs/payments/2026-11-20.log", "s3://logs/ledger/2026-11-20.log"]
            ),
        ]
    )
    assert [f.message for f in flags_of()] == [
        'Cites resource "s3://logs/ledger/2026-11-20.log", which appears in none of the 2 '
        "context events."
    ]


def test_without_any_context_one_flag_says_so(agent):
    _ingest([proposal(citations=["/var/log/app.log", "deployment/api"])])
    assert flags_of() == [
        Flag(
            FlagKind.CITATION,
            "Cites 2 files, resources or log lines, but no context (alerts, context reads, tool "
            "or LLM calls) was reported for this action or its incident.",
            "Checked 2 citations against 0 context events of this action and its incident "
            "(sources, URIs, queries, summaries and data; LLM answers excluded).",
        )
    ]


def test_prose_citations_and_no_citations_raise_nothing(agent):
    _ingest(
        [
            proposal(action_id="act-1", citations=["runbook step 3", "the dashboard"]),
            proposal(action_id="act-2", citations=[]),
        ]
    )
    assert actions_flags(list(Action.objects.all())) == {"act-1": [], "act-2": []}


# --- b. timestamps ------------------------------------------------------------------------------


def test_flags_a_timestamp_after_the_proposal(agent):
    _ingest([alert(0), context(1), proposal(5, rationale="errors since 2026-11-20T09:45:00Z")])
    assert flags_of() == [
        Flag(
            FlagKind.TIMESTAMP,
            'Mentions "2026-11-20T09:45:00Z", 40 min after the proposal was made '
            "(2026-11-20 09:05:00 UTC).",
            "Checked 1 timestamp in the rationale and citations against the incident window "
            "2026-11-20 08:30:00 UTC to 2026-11-20 09:05:00 UTC (from 30 min before the first "
            "alert to the proposal).",
        )
    ]


def test_flags_a_timestamp_before_the_incident_window_with_a_zone_offset(agent):
    _ingest(
        [
            alert(0),
            context(1),
            proposal(
                citations=[{"source": "loki", "ts": "2026-11-20 08:10:00+01:00"}],
                rationale="deploy at 2026-11-20T08:45:00Z then errors",
            ),
        ]
    )
    flags = flags_of()
    assert [f.message for f in flags] == [
        'Mentions "2026-11-20 08:10:00+01:00", 1 h 50 min before the first alert '
        "(2026-11-20 09:00:00 UTC), outside the incident window."
    ]
    assert flags[0].checked.startswith("Checked 2 timestamps in the rationale and citations")


def test_timestamps_inside_the_window_dates_and_small_clock_skew_raise_nothing(agent):
    _ingest(
        [
            alert(0),
            proposal(
                5,
                rationale="deploy at 2026-11-20 08:40 UTC, errors from 2026-11-20T09:01:30.123Z; "
                "incident opened 2026-11-20; log says 2026-11-20T09:06:00Z",
            ),
        ]
    )
    assert flags_of() == []


def test_without_an_alert_only_later_timestamps_are_flagged(agent):
    _ingest([proposal(5, rationale="seen at 2026-11-19T01:00:00Z and 2026-11-20T12:00:00Z")])
    assert flags_of() == [
        Flag(
            FlagKind.TIMESTAMP,
            'Mentions "2026-11-20T12:00:00Z", 2 h 55 min after the proposal was made '
            "(2026-11-20 09:05:00 UTC).",
            "Checked 2 timestamps in the rationale and citations against the proposal time "
            "2026-11-20 09:05:00 UTC; no alert was reported, so only later times are flagged.",
        )
    ]


# --- c. figures ---------------------------------------------------------------------------------


def test_flags_a_confident_figure_the_context_contradicts(agent):
    _ingest(
        [
            alert(0),
            context(1, source="prometheus", summary="api error rate 2.1% over the last 30m"),
            proposal(rationale="The error rate is 12% since the rollout.", confidence=0.92),
        ]
    )
    assert flags_of() == [
        Flag(
            FlagKind.FIGURE,
            'The rationale says "error rate is 12%" at confidence 0.92, but the context read '
            'from prometheus at 09:01:00 UTC reports "error rate 2.1%".',
            "Compared 1 figure in the rationale (error rate) with 1 figure the context reports "
            "for the same metric; a flag needs every one of them to differ by at least 1.5 times "
            "(and by 1 point or 20 ms).",
        )
    ]


def test_flags_structured_figures_and_names_both_numbers(agent):
    _ingest(
        [
            alert(0),
            context(
                1,
                source="prometheus",
                summary="node metrics",
                metrics=[{"metric": "cpu_usage", "value": 41.5, "unit": "%"}],
            ),
            event(
                type="tool_call",
                ts=at(2),
                action_id="act-1",
                data={"tool": "promql_query", "result": {"p99_latency_ms": 180}},
            ),
            proposal(rationale="CPU at 95% and p99 latency is 2.3 s", confidence=0.85),
        ]
    )
    assert [f.message for f in flags_of()] == [
        'The rationale says "CPU at 95%" at confidence 0.85, but the context read from '
        'prometheus at 09:01:00 UTC reports "cpu_usage = 41.5%".',
        'The rationale says "p99 latency is 2.3 s" at confidence 0.85, but the promql_query '
        'tool call at 09:02:00 UTC reports "p99_latency_ms = 180".',
    ]


@pytest.mark.parametrize(
    ("rationale", "confidence", "context_data"),
    [
        # Not confident enough to be checked.
        ("The error rate is 12%.", 0.79, {"summary": "error rate 2.1%"}),
        # Close enough.
        ("The error rate is 12%.", 0.9, {"summary": "error rate 10.5%"}),
        # One of the context's figures agrees.
        ("The error rate is 12%.", 0.9, {"summary": "error rate 2.1% at 09:00, 12.4% at 09:04"}),
        # A bound in the context is not a reading.
        ("The error rate is 12%.", 0.9, {"summary": "alert: error rate above 5%"}),
        # A threshold in the rationale is not a claim about the value.
        ("The error rate is above 1%.", 0.9, {"summary": "error rate 30%"}),
        # A fraction or a percentage: 0.12 may well mean 12%.
        ("The error rate is 12%.", 0.9, {"error_rate": 0.12}),
        # "cpu": 4 is cores, not a share.
        ("CPU at 95%.", 0.9, {"cpu": 4}),
        # Nothing about the same metric.
        ("The error rate is 12%.", 0.9, {"summary": "CPU at 30%"}),
        # Latency without a unit cannot be compared.
        ("p99 latency is 2.3 s.", 0.9, {"p99_latency": 180}),
        # Queries carry thresholds, not figures.
        ("The error rate is 12%.", 0.9, {"query": "error rate 1% alerting rule"}),
    ],
)
def test_figures_stay_quiet_when_not_checkable_or_not_contradicted(
    agent, rationale, confidence, context_data
):
    _ingest(
        [
            alert(0),
            context(1, source="prometheus", **context_data),
            proposal(rationale=rationale, confidence=confidence),
        ]
    )
    assert [f for f in flags_of() if f.kind == FlagKind.FIGURE] == []


def test_an_llm_answer_is_not_the_contexts_figure(agent):
    _ingest(
        [
            alert(0),
            event(
                type="llm_call",
                ts=at(2),
                action_id="act-1",
                data={
                    "model": "claude-sonnet-4-5",
                    "input_tokens": 10,
                    "output_tokens": 10,
                    "latency_ms": 100,
                    "request": "error rate 2%",
                    "response": "error rate 2%",
                },
            ),
            proposal(rationale="The error rate is 12%."),
        ]
    )
    assert flags_of() == []


# --- bulk and rendering -------------------------------------------------------------------------


def test_a_page_of_100_actions_costs_one_query(agent, django_assert_max_num_queries):
    items = []
    for i in range(100):
        items += [
            alert(0, action_id=f"act-{i}"),
            context(1, action_id=f"act-{i}", summary=f"line {i}"),
            proposal(
                action_id=f"act-{i}",
                citations=[f"level=error msg=x n={i}" if i % 2 else f"/var/log/{i}.log"],
                rationale="error rate is 12%",
            ),
        ]
    items.append(event(type="execution", action_id="reported-only", data={"status": "started"}))
    _ingest(items)
    actions = list(Action.objects.all())
    with django_assert_max_num_queries(3):
        flags = actions_flags(actions)
    assert len(flags) == 101
    assert flags["reported-only"] == []
    assert [f.message for f in flags["act-7"]] == [
        'Cites log line "level=error msg=x n=7", which appears in none of the 200 context events.'
    ]


def test_the_partial_renders_compact_badges_and_full_entries():
    flags = [
        Flag(FlagKind.CITATION, 'Cites file "/etc/x.conf" <b>', "Checked 2 citations."),
        Flag(FlagKind.CITATION, 'Cites file "/etc/y.conf"', "Checked 2 citations."),
        Flag(FlagKind.TIMESTAMP, "Mentions 2026-11-20T12:00:00Z.", "Checked 1 timestamp."),
    ]
    compact = render_to_string("actions/_flags.html", {"flags": flags, "compact": True})
    # One badge per kind, its first message, and every message plus what was checked on hover.
    assert (
        '<span class="flag" title="Cites file &quot;/etc/x.conf&quot; &lt;b&gt;&#10;'
        'Cites file &quot;/etc/y.conf&quot;&#10;Checked 2 citations.">'
        '<span class="badge warn">unbacked citation \u00d72</span> '
        "Cites file &quot;/etc/x.conf&quot; &lt;b&gt;</span>"
    ) in compact
    assert '<span class="badge warn">timestamp</span> Mentions 2026-11-20T12:00:00Z.' in compact
    full = render_to_string("actions/_flags.html", {"flags": flags})
    assert full.count("<li ") == 3
    assert '<span class="help">Checked 1 timestamp.</span>' in full
    empty = render_to_string("actions/_flags.html", {"flags": []})
    assert "No hallucination flags" in empty
    assert render_to_string("actions/_flags.html", {"flags": [], "compact": True}).strip() == ""


def test_hostile_rationale_and_citations_are_checked_in_bounded_time(agent):
    _ingest(
        [
            alert(0),
            context(1),
            proposal(
                rationale="error rate is at about 12 " * 4000,
                citations=["2026-11-20T" + "1:" * 1000, "[2026-11-20 " + "9" * 2000 + "]"] * 20,
            ),
        ]
    )
    started = time.perf_counter()
    flags = flags_of()
    assert time.perf_counter() - started < 5  # quadratic patterns would take minutes
    assert [f.kind for f in flags] == []
