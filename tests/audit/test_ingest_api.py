import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from apps.audit.models import Event, LedgerSeal
from apps.audit.services.ledger import ledger_verify
from apps.fleet.services import agent_token_mint
from tests.conftest import event, llm_call, post_batch

pytestmark = pytest.mark.django_db(transaction=False)


def test_accepts_a_batch_and_stores_every_event(agent_client, agent):
    items = [
        event(),
        llm_call(),
        event(type="alert", data={"name": "KubePodCrashLooping", "severity": "high"}),
    ]
    response = post_batch(agent_client, items)
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    stored = Event.objects.filter(agent=agent, source="api").order_by("batch_index")
    assert [str(e.id) for e in stored] == [i["id"] for i in items]
    assert [e.type for e in stored] == ["note", "llm_call", "alert"]
    assert stored[1].data["input_tokens"] == 1200
    assert LedgerSeal.objects.order_by("-seq").first().event_count == 3
    assert ledger_verify().ok


def test_resending_the_same_event_counts_a_duplicate_and_stores_nothing(agent_client):
    item = llm_call()
    assert post_batch(agent_client, [item]).json()["accepted"] == 1
    seals = LedgerSeal.objects.count()
    again = post_batch(agent_client, [item]).json()
    assert again == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert Event.objects.filter(source="api").count() == 1
    assert LedgerSeal.objects.count() == seals


def test_same_id_with_other_content_is_a_per_item_conflict(agent_client):
    item = event(data={"text": "first"})
    post_batch(agent_client, [item])
    changed = dict(item, data={"text": "second"})
    body = post_batch(agent_client, [changed, event()]).json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 0
    assert body["rejected"][0]["id"] == item["id"]
    assert "different content" in body["rejected"][0]["errors"]["id"][0]
    assert Event.objects.get(pk=item["id"]).data == {"text": "first"}


def test_repeats_inside_one_batch_are_duplicates_or_conflicts(agent_client):
    item = event(data={"text": "same"})
    body = post_batch(agent_client, [item, item, dict(item, data={"text": "other"})]).json()
    assert body["accepted"] == 1
    assert body["duplicates"] == 1
    assert [r["index"] for r in body["rejected"]] == [2]


def test_bad_items_are_rejected_one_by_one_and_good_ones_kept(agent_client, other_agent):
    future = datetime.now(UTC) + timedelta(hours=1)
    items = [
        event(),  # 0 good
        llm_call(input_tokens="many"),  # 1 wrong type
        event(type="proposal", data={}),  # 2 opsdash-only type
        event(agent="k8s-healer"),  # 3 another agent
        event(ts=future),  # 4 future
        dict(event(), ts="2026-01-01T10:00:00"),  # 5 naive time
        {k: v for k, v in event().items() if k != "type"},  # 6 missing field
        event(type="no_such_type"),  # 7 unknown type
        dict(event(), actionid="typo"),  # 8 unknown envelope field
        "not an object",  # 9
        event(type="execution", data={"status": "exploded"}),  # 10 bad enum
        llm_call(cost_usd="-1"),  # 11 negative money
        event(ts=datetime(2019, 5, 1, tzinfo=UTC)),  # 12 old: accepted
    ]
    response = post_batch(agent_client, items)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    errors = {r["index"]: r["errors"] for r in body["rejected"]}
    assert sorted(errors) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert "data.input_tokens" in errors[1]
    assert "written by opsdash only" in errors[2]["type"][0]
    assert "k8s-healer" in errors[3]["agent"][0]
    assert "future" in errors[4]["ts"][0]
    assert "ts" in errors[5]
    assert errors[6] == {"type": ["This field is required."]}
    assert "Unknown event type" in errors[7]["type"][0]
    assert "actionid" in errors[8]
    assert "data.status" in errors[10]
    assert "data.cost_usd" in errors[11]
    assert Event.objects.filter(source="api").count() == 2


def test_money_is_stored_as_an_exact_decimal_string(agent_client):
    item = llm_call(cost_usd=0.1 + 0.2)  # a float that is not 0.3 exactly
    post_batch(agent_client, [item, llm_call(cost_usd="0.012345678")])
    costs = sorted(e.data["cost_usd"] for e in Event.objects.filter(source="api"))
    assert costs == ["0.012345678", "0.3"]


def test_pii_is_scrubbed_before_storage_with_a_stable_reference(agent_client):
    a = llm_call(request="Page jane.doe@example.com about 10.20.30.40")
    b = event(data={"text": "mail jane.doe@example.com again"})
    post_batch(agent_client, [a, b])
    stored_a = Event.objects.get(pk=a["id"]).data["request"]
    stored_b = Event.objects.get(pk=b["id"]).data["text"]
    assert "jane.doe@example.com" not in stored_a + stored_b
    assert "10.20.30.40" not in stored_a
    ref = stored_a.split(" ")[1]
    assert ref.startswith("<pii:email:")
    assert ref in stored_b


@pytest.mark.parametrize(
    ("body", "status", "phrase"),
    [
        (b"[{not json", 400, "not valid JSON"),
        (b'{"id": 1}', 400, "JSON array"),
        (b"[]", 400, "empty"),
    ],
)
def test_a_body_that_is_not_a_batch_gets_400(agent_client, body, status, phrase):
    response = agent_client.post("/api/v1/events", body, content_type="application/json")
    assert response.status_code == status
    assert phrase in response.json()["error"]


def test_wrong_content_type_gets_415(agent_client):
    response = agent_client.post(
        "/api/v1/events", "x=1", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


@override_settings(INGEST_MAX_ITEMS=5)
def test_too_many_items_gets_413(agent_client):
    response = post_batch(agent_client, [event() for _ in range(6)])
    assert response.status_code == 413
    assert "limit is 5" in response.json()["error"]
    assert Event.objects.filter(source="api").count() == 0


@override_settings(INGEST_MAX_BATCH_BYTES=2000)
def test_too_many_bytes_gets_413(agent_client):
    response = post_batch(agent_client, [event(data={"text": "x" * 3000})])
    assert response.status_code == 413
    assert "2000 bytes" in response.json()["error"]


@override_settings(INGEST_MAX_EVENT_BYTES=1000)
def test_an_oversized_event_is_rejected_alone(agent_client):
    big = event(data={"text": "y" * 2000})
    body = post_batch(agent_client, [big, event()]).json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["id"] == big["id"]
    assert "1000 bytes per event" in body["rejected"][0]["errors"]["non_field_errors"][0]


def test_hostile_values_get_clear_errors_not_500(agent_client):
    items = [
        event(data={"text": "nul \x00 byte"}),
        event(data={"text": "ok", "nested": [[[[[[[[{"a": 1e308}]]]]]]]]}),
        event(data={"text": "🙂 ünïcödé ✓"}),
        event(action_id="a" * 500),
    ]
    response = post_batch(agent_client, items)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    assert {r["index"] for r in body["rejected"]} == {0, 3}
    raw = b'[{"id": "7f1c1f64-2d47-4a0e-9a53-0b8f1f1c2a10", "ts": "2026-01-01T00:00:00Z", "agent": "triage-bot", "type": "note", "data": {"text": 1e400}}]'
    response = agent_client.post("/api/v1/events", raw, content_type="application/json")
    assert response.status_code in (200, 400)
    assert Event.objects.filter(pk="7f1c1f64-2d47-4a0e-9a53-0b8f1f1c2a10").count() == 0


def test_tokens_401_when_wrong_expired_or_revoked_and_403_without_scope(client, agent):
    def status_with(token):
        return client.post(
            "/api/v1/events",
            json.dumps([event()]),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )

    assert status_with("opsa_not-a-real-token").status_code == 401
    assert client.post("/api/v1/events", "[]", content_type="application/json").status_code == 401

    token, raw = agent_token_mint(agent=agent, scopes=["events:write"], ttl=timedelta(days=1))
    assert status_with(raw).status_code == 200
    token.expires_at = timezone.now() - timedelta(seconds=1)
    token.save()
    expired = status_with(raw)
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]

    token, raw = agent_token_mint(agent=agent, scopes=["events:write"], ttl=None)
    token.revoked_at = timezone.now()
    token.save()
    assert "revoked" in status_with(raw).json()["error"]

    _, raw = agent_token_mint(agent=agent, scopes=["gate:check"], ttl=None)
    forbidden = status_with(raw)
    assert forbidden.status_code == 403
    assert "events:write" in forbidden.json()["error"]


def test_tokens_are_stored_only_as_sha256_digests(agent):
    import hashlib

    token, raw = agent_token_mint(agent=agent, scopes=["events:write"], ttl=None)
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in json.dumps(list(type(token).objects.values()), default=str)


def test_list_is_filtered_paginated_and_scoped_to_the_token_agent(agent_client, agent, other_agent):
    base = datetime(2026, 11, 1, tzinfo=UTC)
    mine = [event(ts=base + timedelta(minutes=i), incident_id=f"INC-{i % 2}") for i in range(5)]
    post_batch(agent_client, mine)
    _, other_raw = agent_token_mint(agent=other_agent, scopes=["events:write"], ttl=None)
    from rest_framework.test import APIClient

    other_client = APIClient()
    other_client.credentials(HTTP_AUTHORIZATION=f"Bearer {other_raw}")
    post_batch(other_client, [event(agent="k8s-healer", ts=base)])

    page = agent_client.get("/api/v1/events", {"page_size": 2, "type": "note"}).json()
    assert [e["id"] for e in page["results"]] == [mine[4]["id"], mine[3]["id"]]
    second = agent_client.get(page["next"]).json()
    assert [e["id"] for e in second["results"]] == [mine[2]["id"], mine[1]["id"]]
    filtered = agent_client.get("/api/v1/events", {"incident_id": "INC-1"}).json()
    assert {e["id"] for e in filtered["results"]} == {mine[1]["id"], mine[3]["id"]}
    window = agent_client.get(
        "/api/v1/events", {"since": "2026-11-01T00:02:00Z", "until": "2026-11-01T00:04:00Z"}
    ).json()
    assert [e["id"] for e in window["results"]] == [mine[3]["id"], mine[2]["id"]]
    assert all(
        e["agent"] == "triage-bot" for e in agent_client.get("/api/v1/events").json()["results"]
    )
    assert {e["agent"] for e in other_client.get("/api/v1/events").json()["results"]} == {
        "k8s-healer"
    }
    bad = agent_client.get("/api/v1/events", {"since": "yesterday"})
    assert bad.status_code == 400


def test_people_read_all_events_but_cannot_write_them(client, agent_client, viewer, outsider):
    post_batch(agent_client, [event()])
    client.force_login(viewer)
    assert len(client.get("/api/v1/events", {"type": "note"}).json()["results"]) == 1
    response = client.post("/api/v1/events", json.dumps([event()]), content_type="application/json")
    assert response.status_code == 403
    client.force_login(outsider)
    assert client.get("/api/v1/events").status_code == 403


def test_limits_and_schema_are_published(client):
    assert client.get("/api/v1/limits").json()["max_items_per_batch"] == 1000
    schema = client.get("/api/schema/?format=json").json()
    assert "/api/v1/events" in schema["paths"]
    components = schema["components"]["schemas"]
    assert "LlmCallData" in components
    assert "input_tokens" in components["LlmCallData"]["properties"]
    assert client.get("/api/docs/").status_code == 200


def test_secrets_under_secret_like_keys_are_scrubbed_whole(agent_client):
    item = event(
        type="tool_call",
        data={"tool": "db_connect", "arguments": {"host": "db1", "password": "hunter2"}},
    )
    post_batch(agent_client, [item])
    stored = Event.objects.get(pk=item["id"]).data["arguments"]
    assert stored["host"] == "db1"
    assert stored["password"].startswith("<pii:secret:")


@pytest.mark.parametrize("field", ["action_id", "incident_id", "agent_version", "prompt_version"])
def test_nul_characters_in_envelope_text_are_rejected_per_item(agent_client, field):
    body = post_batch(agent_client, [event(**{field: "a\x00b"}), event()]).json()
    assert body["accepted"] == 1
    assert field in body["rejected"][0]["errors"]


def test_list_api_query_count_does_not_grow_with_rows(agent_client, django_assert_max_num_queries):
    post_batch(agent_client, [event() for _ in range(50)])
    with django_assert_max_num_queries(4):
        response = agent_client.get("/api/v1/events", {"page_size": 50})
    assert len(response.json()["results"]) == 50


def test_gzip_bodies_are_accepted(agent_client):
    import gzip

    items = [event() for _ in range(3)]
    response = agent_client.post(
        "/api/v1/events",
        gzip.compress(json.dumps(items).encode()),
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}


@override_settings(INGEST_MAX_BATCH_BYTES=100_000)
def test_a_gzip_bomb_is_refused_without_inflating_it(agent_client):
    import gzip

    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]")
    assert len(bomb) < 100_000
    response = agent_client.post(
        "/api/v1/events", bomb, content_type="application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 413
    assert "decompressed" in response.json()["error"]


@pytest.mark.parametrize(
    ("encoding", "body", "status"), [("gzip", b"not gzip", 400), ("br", b"[]", 415)]
)
def test_bad_or_unknown_encodings_get_a_clear_4xx(agent_client, encoding, body, status):
    response = agent_client.post(
        "/api/v1/events", body, content_type="application/json", HTTP_CONTENT_ENCODING=encoding
    )
    assert response.status_code == status
    assert response.json()["error"]


def test_the_openapi_document_validates_without_warnings(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert text.startswith("openapi: 3.1.0")
    assert "ProposalIn:" in text
