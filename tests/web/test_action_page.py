"""The action page: the decision provenance, as a page and as the queue's right pane."""

import html
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from apps.audit.models import Event
from tests.web.test_queue import pending, record

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(make_person):
    return make_person("ada", "approver")


def provenance(agent):
    """An incident with an alert, context reads, LLM and tool calls, a proposal, a policy
    decision, an approval, an execution and an outcome."""
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    ids = {}
    ids["alert"] = record(
        agent,
        "alert",
        {"name": "KubePodCrashLooping", "severity": "critical", "summary": "api restarting"},
        ts=t0,
        incident_id="INC-9",
    )
    ids["context"] = record(
        agent,
        "context",
        {
            "source": "loki",
            "uri": "loki://prod/api?since=30m",
            "summary": "412 OOMKilled lines",
            "query": "api errors",
        },
        ts=t0 + timedelta(seconds=30),
        incident_id="INC-9",
        action_id="act-p",
    )
    ids["other_context"] = record(
        agent,
        "context",
        {"source": "grafana", "summary": "belongs to another action"},
        ts=t0 + timedelta(seconds=31),
        incident_id="INC-9",
        action_id="act-other",
    )
    ids["llm"] = record(
        agent,
        "llm_call",
        {
            "model": "claude-sonnet-4-5",
            "input_tokens": 1830,
            "output_tokens": 412,
            "cache_read_input_tokens": 1024,
            "latency_ms": 2310,
            "cost_usd": "0.0123",
            "request": "page jane@example.com about the api\nline two",
            "response": "restart api",
        },
        ts=t0 + timedelta(seconds=60),
        incident_id="INC-9",
        action_id="act-p",
    )
    ids["tool"] = record(
        agent,
        "tool_call",
        {"tool": "kubectl_get", "arguments": {"pods": "api"}, "status": "ok", "latency_ms": 80},
        ts=t0 + timedelta(seconds=70),
        incident_id="INC-9",
        action_id="act-p",
    )
    action = pending(agent, "act-p", "medium", incident_id="INC-9", age=timedelta(minutes=20))
    return action, ids, t0


def test_the_timeline_tells_the_whole_story_in_time_order(client, ada, agent):
    _action, ids, _t0 = provenance(agent)
    client.force_login(ada)
    page = client.get(reverse("actions:detail", args=["act-p"])).content.decode()
    text = html.unescape(page)
    # In time order: alert, context, llm, tool, proposal, policy decision.
    timeline = text.split('<ol class="timeline">')[1]
    positions = [
        timeline.index(s)
        for s in (
            "KubePodCrashLooping",
            "412 OOMKilled lines",
            "claude-sonnet-4-5",
            "kubectl_get",
            "pods crash-loop since the last deploy",
            "medium risk in prod needs a person.",
        )
    ]
    assert positions == sorted(positions)
    assert "loki://prod/api?since=30m" in text  # the context read's source and uri
    assert "1830 in · 412 out · 1024 cache read · 2310 ms · $0.0123" in text
    assert "belongs to another action" not in text
    for event_id in (ids["alert"], ids["context"], ids["llm"], ids["tool"]):
        assert f'href="/audit/events/{event_id}/"' in page
    # Bodies fold away, and stay as stored: scrubbed at ingest.
    assert "<details" in page and "<summary>request" in page
    assert "jane@example.com" not in text
    assert "<pii:email:" in text
    assert "line two" in text
    # The status, deadline and the decision forms while pending.
    assert "Pending approval" in text
    assert "expires in 1h" in text
    assert 'class="btn primary decide-approve"' in page
    assert "redeploy v41" in text  # rollback plan
    assert "loki: api errors" in text  # citation
    assert "policy v3" in text
    # The flags section always says what it found; Explain is off without ANTHROPIC_API_KEY.
    assert 'aria-label="Hallucination flags"' in page
    assert "Explain with Claude" not in page


def test_after_decisions_the_timeline_shows_approvals_execution_and_outcome(
    client, ada, agent, make_person
):
    from apps.actions.decide import action_decide

    provenance(agent)
    action_decide(action_id="act-p", user=ada, approve=True, comment="matches the logs")
    now = datetime.now(UTC)
    record(agent, "execution", {"status": "started"}, ts=now, action_id="act-p")
    record(
        agent, "execution", {"status": "succeeded", "detail": "rolled"}, ts=now, action_id="act-p"
    )
    record(
        agent, "outcome", {"resolved": True, "summary": "errors gone"}, ts=now, action_id="act-p"
    )
    client.force_login(ada)
    text = html.unescape(client.get(reverse("actions:detail", args=["act-p"])).content.decode())
    assert "Succeeded" in text
    assert "approved</b> by <b>ada" in text
    assert "Comment: matches the logs" in text
    assert "errors gone" in text
    assert "decide-approve" not in text
    assert "Was the proposal right?" in text  # the verdict form appears with the outcome


def test_the_pane_is_the_same_partial_without_the_page(client, ada, agent):
    provenance(agent)
    client.force_login(ada)
    pane = client.get(reverse("actions:detail", args=["act-p"]), HTTP_HX_REQUEST="true")
    body = pane.content.decode()
    assert pane.status_code == 200
    assert "<html" not in body
    assert body.lstrip().startswith('<article class="provenance"')
    assert "KubePodCrashLooping" in body


def test_unknown_action_is_404_and_the_page_needs_a_role(client, ada, outsider, agent):
    pending(agent, "act-1")
    client.force_login(ada)
    assert client.get(reverse("actions:detail", args=["nope"])).status_code == 404
    assert client.get("/actions/%3Cscript%3E/").status_code == 404
    client.force_login(outsider)
    assert client.get(reverse("actions:detail", args=["act-1"])).status_code == 403
    client.logout()
    assert client.get(reverse("actions:detail", args=["act-1"])).status_code == 302


def test_the_action_page_needs_a_fixed_number_of_queries(
    client, ada, agent, django_assert_max_num_queries
):
    provenance(agent)
    for _i in range(20):
        record(
            agent,
            "llm_call",
            {"model": "m", "input_tokens": 1, "output_tokens": 1, "latency_ms": 1},
            ts=datetime.now(UTC),
            action_id="act-p",
        )
    client.force_login(ada)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("actions:detail", args=["act-p"])).content.decode()
    # 25 events of the action and the incident's alert; 21 LLM calls summed.
    assert Event.objects.filter(action_id="act-p").count() == 25
    assert "26 events" in page
    assert "21 LLM calls · 2282 tokens" in page


def test_the_action_list_filters_and_links_to_the_action_page(client, viewer, agent):
    pending(agent, "act-med")
    pending(agent, "act-high", "high", env="staging")
    client.force_login(viewer)
    url = reverse("actions:list")
    page = client.get(url, {"env": "staging"}).content.decode()
    assert 'href="/actions/act-high/"' in page and "act-med" not in page
    partial = client.get(url, {"risk": "medium"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial
    assert 'href="/actions/act-med/"' in partial and "act-high" not in partial
    assert "act-med" in client.get(url, {"status": "pending_approval"}).content.decode()
    assert "act-med" not in client.get(url, {"status": "approved"}).content.decode()
    assert client.get(url, {"page": "abc", "status": "nonsense"}).status_code == 200
