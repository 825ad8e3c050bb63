"""Whatever an agent sends, the answer is a 4xx or a per-item verdict, never a 500."""

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import event

pytestmark = pytest.mark.django_db

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
envelope_keys = [
    "id",
    "ts",
    "agent",
    "type",
    "data",
    "action_id",
    "incident_id",
    "agent_version",
    "prompt_version",
]


@st.composite
def mutated_events(draw):
    """Valid events with fields dropped, retyped or replaced by hostile values."""
    item = event(
        type=draw(st.sampled_from(["note", "llm_call", "alert", "execution", "proposal", "bogus"]))
    )
    for key in draw(st.lists(st.sampled_from(envelope_keys), max_size=3)):
        action = draw(st.sampled_from(["drop", "replace", "hostile"]))
        if action == "drop":
            item.pop(key, None)
        elif action == "replace":
            item[key] = draw(json_values)
        else:
            item[key] = draw(
                st.sampled_from(
                    [
                        "\x00",
                        "'; DROP TABLE audit_event; --",
                        "9" * 400,
                        "2026-13-45T99:99:99Z",
                        "../../etc/passwd",
                        "<script>alert(1)</script>",
                        str(uuid.uuid4()),
                        "\ud7ff\ue000",
                    ]
                )
            )
    if draw(st.booleans()):
        item["data"] = draw(json_values)
    return item


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(mutated_events(), min_size=1, max_size=6))
def test_mutated_batches_get_per_item_verdicts_never_500(agent_client, items):
    response = agent_client.post(
        "/api/v1/events", json.dumps(items), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] + body["duplicates"] + len(body["rejected"]) == len(items)
    for rejection in body["rejected"]:
        assert rejection["errors"] and all(
            isinstance(m, list) and m for m in rejection["errors"].values()
        )


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        json_values.map(json.dumps), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
    )
)
def test_arbitrary_bodies_get_a_4xx_or_200(agent_client, body):
    response = agent_client.post(
        "/api/v1/events", body.encode("utf-8", "surrogatepass"), content_type="application/json"
    )
    assert response.status_code in (200, 400, 413), response.content
    assert "error" in response.json() or "accepted" in response.json()
