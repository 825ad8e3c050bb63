"""Explain: scrubbed prompt, recorded llm_call, reuse, and a clear fragment for every failure."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.template import Context, Template
from django.test import Client

from apps.actions.models import Action
from apps.assist.models import ActionExplanation
from apps.assist.rendering import explanation_html
from apps.assist.services import SYSTEM_PROMPT
from apps.audit.canonical import encode_json
from apps.audit.models import Event, EventSource
from apps.audit.scrubbing import scrub_text
from apps.audit.services.ingest import ALL_TYPES, agent_lookup_cache, event_batch_ingest
from apps.fleet.models import Agent, Team
from tests.assist.conftest import FakeAnthropic, Reply, error_body, message_body
from tests.conftest import event, free_port

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
URL = "/assist/actions/act-1/explain/"
EMAIL = "jane.doe@example.org"
IP = "10.1.2.3"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def action(agent: Agent) -> Action:
    items = [
        event(
            type="alert",
            ts=at(0),
            action_id="act-1",
            incident_id="INC-1",
            data={"name": "HighErrorRate", "severity": "high", "summary": "api 5xx"},
        ),
        event(
            type="context",
            ts=at(1),
            action_id="act-1",
            incident_id="INC-1",
            # Scrubbed at ingest.
            data={"source": "loki", "summary": f"errors reported by {EMAIL}"},
        ),
        event(
            type="proposal",
            ts=at(5),
            action_id="act-1",
            incident_id="INC-1",
            data={
                "action_type": "k8s.restart_deployment",
                "target": "k8s://prod/payments/api",
                "risk": "medium",
                "confidence": 0.9,
                "rationale": "api pods crash looping",
                "citations": ["/var/log/api/missing.log"],
                "rollback_plan": "redeploy the previous revision",
            },
        ),
        event(
            type="policy_decision",
            ts=at(5),
            action_id="act-1",
            data={"decision": "pending_approval", "reasons": ["medium risk in prod"]},
        ),
    ]
    result = event_batch_ingest(
        items=[encode_json(i) for i in items],
        source=EventSource.IMPORT,
        allowed_types=ALL_TYPES,
        agents_by_slug=agent_lookup_cache(),
    )
    assert not result.rejected
    # Rows that never went through ingest's scrubber (a hand repair, an old import): the
    # prompt must be scrubbed all the same.
    Event.objects.create(
        id=uuid.uuid4(),
        ts=at(2),
        agent=agent,
        type="context",
        action_id="act-1",
        incident_id="INC-1",
        data={"source": "kubectl", "summary": f"pod api-1 on {IP}, owner {EMAIL}"},
        source=EventSource.IMPORT,
        content_hash="0" * 64,
        batch_id=uuid.uuid4(),
        batch_index=0,
    )
    Action.objects.filter(action_id="act-1").update(
        rationale=f"api pods crash looping; ask {EMAIL} at {IP}"
    )
    return Action.objects.get(action_id="act-1")


@pytest.fixture
def viewer_client(viewer: Any) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


def _llm_call_events() -> list[Event]:
    return list(Event.objects.filter(type="llm_call").select_related("agent__team"))


def test_explains_from_scrubbed_provenance_and_records_the_call(
    assist_on: FakeAnthropic, action: Action, viewer: Any, viewer_client: Client
):
    assist_on.reply(Reply(body=message_body("The agent wants to **restart** `api`.")))
    response = viewer_client.post(URL, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    html = response.content.decode()
    assert "The agent wants to <strong>restart</strong> <code>api</code>." in html
    assert "Written by claude-sonnet-5 from scrubbed provenance for vera" in html

    (sent,) = assist_on.requests
    assert sent["path"] == "/v1/messages"
    # The SDK sends the key as x-api-key or (2.x) as a bearer token.
    assert "sk-ant-test-key-not-real" in (
        sent["headers"].get("x-api-key", ""),
        sent["headers"].get("authorization", "").removeprefix("Bearer "),
    )
    assert EMAIL not in sent["raw"] and IP not in sent["raw"]
    body = json.loads(sent["raw"])
    assert body["model"] == "claude-sonnet-5"
    assert body["max_tokens"] == 700
    assert body["system"] == SYSTEM_PROMPT
    prompt = body["messages"][0]["content"]
    assert scrub_text(EMAIL) in prompt and scrub_text(IP) in prompt
    assert "Action type: k8s.restart_deployment; target: k8s://prod/payments/api" in prompt
    assert "policy decision: pending_approval" in prompt
    assert 'Cites file "/var/log/api/missing.log", which appears in none' in prompt

    explanation = ActionExplanation.objects.get()
    assert explanation.action == action
    assert explanation.proposal_hash == action.proposal_hash != ""
    assert explanation.text == "The agent wants to **restart** `api`."
    assert (explanation.input_tokens, explanation.output_tokens) == (1234, 321)
    assert explanation.created_by == viewer

    (call,) = _llm_call_events()
    assert (call.agent.slug, call.agent.team.slug, call.action_id) == ("opsdash", "opsdash", None)
    assert str(call.id) == str(explanation.llm_call_event_id)
    assert call.source == EventSource.OPSDASH
    data = call.data
    assert {
        k: data[k]
        for k in (
            "model",
            "provider",
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "stop_reason",
            "purpose",
            "explained_action_id",
        )
    } == {
        "model": "claude-sonnet-5",
        "provider": "anthropic",
        "input_tokens": 1234,
        "output_tokens": 321,
        "cache_creation_input_tokens": 50,
        "cache_read_input_tokens": 2048,
        "stop_reason": "end_turn",
        "purpose": "explain_action",
        "explained_action_id": "act-1",
    }
    assert "cost_usd" not in data
    assert data["latency_ms"] > 0
    assert data["response"]["text"] == "The agent wants to **restart** `api`."
    assert EMAIL not in json.dumps(data) and IP not in json.dumps(data)
    assert data["request"]["messages"][0]["content"] == prompt


def test_a_second_click_reuses_the_answer_and_regenerate_spends_again(
    assist_on: FakeAnthropic, action: Action, viewer_client: Client
):
    assist_on.reply(Reply(body=message_body("first")), Reply(body=message_body("second")))
    assert "first" in viewer_client.post(URL).content.decode()
    assert "first" in viewer_client.post(URL).content.decode()
    assert len(assist_on.requests) == 1
    assert ActionExplanation.objects.count() == 1

    response = viewer_client.post(URL, {"regenerate": "1"})
    assert "second" in response.content.decode()
    assert len(assist_on.requests) == 2
    assert list(ActionExplanation.objects.values_list("text", flat=True)) == ["second", "first"]
    assert len(_llm_call_events()) == 2
    # The built-in agent and team exist once, however often they are used.
    assert Agent.objects.filter(slug="opsdash").count() == 1
    assert Team.objects.filter(slug="opsdash").count() == 1


def test_a_changed_proposal_is_explained_afresh(
    assist_on: FakeAnthropic, action: Action, viewer_client: Client
):
    viewer_client.post(URL)
    Action.objects.filter(pk=action.pk).update(proposal_hash="f" * 64)
    viewer_client.post(URL)
    assert len(assist_on.requests) == 2


@pytest.mark.parametrize(
    ("reply", "status", "message"),
    [
        (
            Reply(401, error_body("authentication_error", "invalid x-api-key")),
            502,
            "The Anthropic API refused opsdash&#x27;s API key (HTTP 401) "
            "(authentication_error: invalid x-api-key). An admin should check ANTHROPIC_API_KEY.",
        ),
        (
            Reply(429, error_body("rate_limit_error", "slow down"), {"retry-after": "17"}),
            429,
            "The Anthropic API is rate-limiting opsdash (HTTP 429). Try again in 17 s.",
        ),
        (
            Reply(500, error_body("api_error", "Internal server error")),
            502,
            "The Anthropic API had an error (HTTP 500) (api_error: Internal server error). "
            "Try again in a minute.",
        ),
        (
            Reply(529, error_body("overloaded_error", "Overloaded")),
            502,
            "The Anthropic API had an error (HTTP 529) (overloaded_error: Overloaded). "
            "Try again in a minute.",
        ),
        (
            Reply(404, error_body("not_found_error", "model: claude-nope")),
            502,
            "The Anthropic API refused the request (HTTP 404) (not_found_error: model: "
            "claude-nope). An admin should check ASSIST_MODEL and ASSIST_MAX_TOKENS.",
        ),
    ],
)
def test_api_errors_answer_with_a_fragment_a_person_can_act_on(
    assist_on: FakeAnthropic, action: Action, viewer_client: Client, reply, status, message
):
    assist_on.reply(reply)
    response = viewer_client.post(URL, HTTP_HX_REQUEST="true")
    assert response.status_code == status
    assert message in response.content.decode()
    assert 'class="message error assist-error"' in response.content.decode()
    if status == 429:
        assert response["Retry-After"] == "17"
    assert ActionExplanation.objects.count() == 0
    assert _llm_call_events() == []


def test_a_slow_api_times_out_with_a_clear_message(
    assist_on: FakeAnthropic, action: Action, viewer_client: Client, settings
):
    settings.ASSIST_TIMEOUT_SECONDS = 0.3
    assist_on.reply(Reply(body=message_body(), delay=1.5))
    response = viewer_client.post(URL)
    assert response.status_code == 504
    assert "Claude did not answer within 0.3 s." in response.content.decode()
    assert ActionExplanation.objects.count() == 0


def test_an_unreachable_api_says_so(
    assist_on: FakeAnthropic, action: Action, viewer_client: Client, settings
):
    settings.ANTHROPIC_BASE_URL = f"http://127.0.0.1:{free_port()}"
    response = viewer_client.post(URL)
    assert response.status_code == 502
    assert "opsdash could not reach the Anthropic API." in response.content.decode()


def test_an_empty_answer_is_recorded_as_spent_but_not_kept(
    assist_on: FakeAnthropic, action: Action, viewer_client: Client
):
    assist_on.reply(Reply(body=message_body("", output_tokens=3, stop_reason="refusal")))
    response = viewer_client.post(URL)
    assert response.status_code == 502
    assert "Claude returned no text (stop reason: refusal)." in response.content.decode()
    assert ActionExplanation.objects.count() == 0
    (call,) = _llm_call_events()
    assert (call.data["output_tokens"], call.data["stop_reason"]) == (3, "refusal")


def test_without_a_key_explain_is_off_and_calls_nothing(
    settings, fake_anthropic: FakeAnthropic, action: Action, viewer_client: Client
):
    settings.ANTHROPIC_API_KEY = ""
    settings.ANTHROPIC_BASE_URL = fake_anthropic.url
    response = viewer_client.post(URL)
    assert response.status_code == 503
    assert "Explain is off: opsdash has no ANTHROPIC_API_KEY." in response.content.decode()
    assert fake_anthropic.requests == []
    assert not Agent.objects.filter(slug="opsdash").exists()


def test_the_button_shows_only_when_configured(settings):
    template = Template("{% load assist %}{% explain_button 'act-1' %}")
    settings.ANTHROPIC_API_KEY = ""
    assert template.render(Context()).strip() == ""
    settings.ANTHROPIC_API_KEY = "sk-ant-test-key-not-real"
    html = template.render(Context())
    assert 'hx-post="/assist/actions/act-1/explain/"' in html
    assert "Explain with Claude" in html


def test_unknown_action_anonymous_outsider_get_and_missing_csrf(
    assist_on: FakeAnthropic, action: Action, viewer: Any, outsider: Any, viewer_client: Client
):
    response = viewer_client.post("/assist/actions/act-nope/explain/")
    assert response.status_code == 404
    assert "There is no action with this id" in response.content.decode()

    assert viewer_client.get(URL).status_code == 405
    anonymous = Client().post(URL)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")

    other = Client()
    other.force_login(outsider)
    assert other.post(URL).status_code == 403

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(viewer)
    assert strict.post(URL).status_code == 403
    assert assist_on.requests == []


def test_markdownish_answers_become_safe_html():
    text = (
        "Summary with <script>alert(1)</script> & **bold**.\n"
        "Second line.\n\n"
        "- first <b>item</b>\n"
        "* second `code`\n"
        "1. one\n"
        "2) two\n\n"
        "## Risk\n"
        "**unclosed bold and [link](javascript:alert(1))"
    )
    assert explanation_html(text) == (
        "<p>Summary with &lt;script&gt;alert(1)&lt;/script&gt; &amp; <strong>bold</strong>."
        "<br>Second line.</p>"
        "<ul><li>first &lt;b&gt;item&lt;/b&gt;</li><li>second <code>code</code></li></ul>"
        "<ol><li>one</li><li>two</li></ol>"
        "<p><strong>Risk</strong></p>"
        "<p>**unclosed bold and [link](javascript:alert(1))</p>"
    )
