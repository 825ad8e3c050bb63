"""/api/v1/policies: every status code, line-numbered errors, hostile input, idempotent reload."""

import pytest

from apps.policy.models import PolicyShadow, PolicyVersion
from apps.policy.schema import MAX_ALIASES, MAX_SOURCE_BYTES

pytestmark = pytest.mark.django_db

V1 = "rules:\n  - id: allow-k8s\n    effect: allow\n    match: {action_type: 'k8s.*'}\n"
V2 = V1 + "  - id: no-db\n    effect: deny\n    match: {action_type: 'db.*'}\n"
BROKEN = V1 + "  - id: broken\n    effect: sometimes\n"


@pytest.fixture
def lead(person_api):
    return person_api("sam", "sre_lead")


@pytest.fixture
def reader(person_api):
    return person_api("vera", "viewer")


def test_without_credentials_every_endpoint_answers_401(client):
    for method, url in [
        ("get", "/api/v1/policies"),
        ("post", "/api/v1/policies"),
        ("get", "/api/v1/policies/active"),
        ("get", "/api/v1/policies/1"),
        ("post", "/api/v1/policies/1/activate"),
        ("get", "/api/v1/policies/shadow"),
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == "Bearer"


def test_lead_creates_a_draft_then_activates_it(lead):
    response = lead.post("/api/v1/policies", {"source": V1, "note": "first"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["number"], body["active"], body["note"], body["created_by"]) == (
        1,
        False,
        "first",
        "sam",
    )
    assert body["source"] == V1
    assert lead.get("/api/v1/policies/active").status_code == 404

    activated = lead.post("/api/v1/policies/1/activate")
    assert activated.status_code == 200
    assert (activated.json()["active"], activated.json()["activated_by"]) == (True, "sam")
    active = lead.get("/api/v1/policies/active").json()
    assert (active["number"], active["source"]) == (1, V1)


def test_create_and_activate_at_once_and_reloading_the_same_text_is_a_no_op(lead):
    first = lead.post("/api/v1/policies", {"source": V1, "activate": True}, format="json")
    assert (first.status_code, first.json()["active"]) == (201, True)
    again = lead.post("/api/v1/policies", {"source": V1, "activate": True}, format="json")
    assert again.status_code == 200
    assert again.json()["number"] == 1
    assert PolicyVersion.objects.count() == 1


def test_list_newest_first_without_source(lead, reader, django_assert_max_num_queries):
    lead.post("/api/v1/policies", {"source": V1, "activate": True}, format="json")
    lead.post("/api/v1/policies", {"source": V2, "note": "deny db"}, format="json")
    with django_assert_max_num_queries(4):  # token, roles, versions: not one per version
        response = reader.get("/api/v1/policies")
    assert response.status_code == 200
    rows = response.json()
    assert [(r["number"], r["active"], r["note"]) for r in rows] == [
        (2, False, "deny db"),
        (1, True, ""),
    ]
    assert "source" not in rows[0]
    assert set(rows[0]) == {
        "number",
        "active",
        "note",
        "created_by",
        "created_at",
        "activated_at",
        "activated_by",
        "sha256",
    }
    detail = reader.get("/api/v1/policies/2")
    assert (detail.status_code, detail.json()["source"]) == (200, V2)


def test_rollback_through_activate(lead):
    lead.post("/api/v1/policies", {"source": V1, "activate": True}, format="json")
    lead.post("/api/v1/policies", {"source": V2, "activate": True}, format="json")
    response = lead.post("/api/v1/policies/1/activate")
    assert response.status_code == 200
    assert list(PolicyVersion.objects.values_list("number", "active")) == [(2, False), (1, True)]
    # Activating the active version again changes nothing.
    before = PolicyVersion.objects.get(number=1).activated_at
    assert lead.post("/api/v1/policies/1/activate").status_code == 200
    assert PolicyVersion.objects.get(number=1).activated_at == before


def test_invalid_policy_is_400_with_the_line_of_each_error(lead):
    response = lead.post("/api/v1/policies", {"source": BROKEN}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "The policy is not valid; nothing was saved."
    assert body["errors"] == [
        {
            "line": 6,
            "path": "rules[1].effect",
            "message": "Invalid enum value 'sometimes'",
        }
    ]
    assert not PolicyVersion.objects.exists()


def test_a_viewer_cannot_write(reader):
    response = reader.post("/api/v1/policies", {"source": V1}, format="json")
    assert response.status_code == 403
    assert response.json()["error"] == "Changing the policy needs the sre_lead or admin role."
    assert reader.post("/api/v1/policies/1/activate").status_code == 403
    assert reader.post("/api/v1/policies/shadow", {}, format="json").status_code == 403
    assert not PolicyVersion.objects.exists()


def test_people_without_a_role_and_agents_cannot_read(person_api, agent_client):
    nobody = person_api("otto")
    assert nobody.get("/api/v1/policies").status_code == 403
    response = agent_client.get("/api/v1/policies")
    assert response.status_code == 403


def test_admin_can_write(person_api):
    admin = person_api("alex", "admin")
    assert admin.post("/api/v1/policies", {"source": V1}, format="json").status_code == 201


def test_unknown_version_is_404(lead):
    assert lead.get("/api/v1/policies/7").status_code == 404
    response = lead.post("/api/v1/policies/7/activate")
    assert response.status_code == 404
    assert response.json()["error"] == "There is no policy version 7."
    assert lead.get("/api/v1/policies/99999999999999999999").status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"source": 42}, "source", "Send the policy as a string of YAML, not int."),
        ({"source": ["rules: []"]}, "source", "Send the policy as a string of YAML, not list."),
        ({"source": None}, "source", "This field may not be null."),
        ({"source": ""}, "source", "This field may not be blank."),
        ({}, "source", "This field is required."),
        ({"source": V1, "activate": "perhaps"}, "activate", "Must be a valid boolean."),
        ({"source": V1, "note": "x" * 201}, "note", "Ensure this field has no more than 200"),
    ],
)
def test_wrong_types_are_400_with_the_field(lead, body, field, message):
    response = lead.post("/api/v1/policies", body, format="json")
    assert response.status_code == 400
    assert message in response.json()["detail"][field][0]


def test_a_list_body_is_400(lead):
    response = lead.post("/api/v1/policies", [V1], format="json")
    assert response.status_code == 400


def test_huge_source_is_413(lead):
    source = V1 + "# padding\n" * (MAX_SOURCE_BYTES // 10)
    response = lead.post("/api/v1/policies", {"source": source}, format="json")
    assert response.status_code == 413
    assert "the limit is 262144 bytes (256 KB)" in response.json()["error"]
    assert not PolicyVersion.objects.exists()


def test_billion_laughs_is_refused_quickly(lead):
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    response = lead.post("/api/v1/policies", {"source": "\n".join(lines)}, format="json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["message"] == f"more than {MAX_ALIASES} aliases (*name); write the values out"
    assert error["line"] == 5


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("a: " + "[" * 40 + "]" * 40, 1, "nested more than 32 levels deep"),
        ("rules: [\n", None, "not valid YAML"),
        ("---\nrules: []\n---\nrules: []\n", 3, "not valid YAML: but found another document"),
        ("rules:\n  - id: a\x07\n", 2, "not valid YAML: control characters are not allowed"),
        ("- a\n- b\n", 1, "the policy must be a mapping"),
        ("autonomy_ceiling:\n  bot: reckless\n", 2, "Invalid enum value 'reckless'"),
    ],
)
def test_hostile_or_odd_yaml_is_400_never_500(lead, source, line, message):
    response = lead.post("/api/v1/policies", {"source": source}, format="json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert message in error["message"]
    if line is not None:
        assert error["line"] == line


def test_shadow_start_status_and_stop(lead, reader, agent, other_agent):
    lead.post("/api/v1/policies", {"source": V1, "activate": True}, format="json")
    lead.post("/api/v1/policies", {"source": V2}, format="json")
    assert reader.get("/api/v1/policies/shadow").json() == {
        "shadow": None,
        "evaluated": 0,
        "differing": 0,
    }
    started = lead.post(
        "/api/v1/policies/shadow", {"version": 2, "agents": ["triage-bot"]}, format="json"
    )
    assert started.status_code == 201
    assert (started.json()["version"], started.json()["agents"]) == (2, ["triage-bot"])
    again = lead.post(
        "/api/v1/policies/shadow", {"version": 2, "agents": ["k8s-healer"]}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["error"] == "A shadow of v2 is already running; stop it first."
    state = reader.get("/api/v1/policies/shadow").json()
    assert (state["shadow"]["running"], state["evaluated"]) == (True, 0)
    stopped = lead.delete("/api/v1/policies/shadow")
    assert (stopped.status_code, stopped.json()["running"], stopped.json()["stopped_by"]) == (
        200,
        False,
        "sam",
    )
    assert lead.delete("/api/v1/policies/shadow").status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"version": 1, "agents": ["triage-bot"]}, "v1 is the active policy"),
        ({"version": 2, "agents": ["ghost-bot"]}, "No agent named ghost-bot."),
        ({"version": 9, "agents": ["triage-bot"]}, "There is no policy version 9."),
        ({"version": 2, "agents": []}, "Ensure this field has at least 1 elements."),
        ({"version": "two", "agents": ["triage-bot"]}, "A valid integer is required."),
    ],
)
def test_shadow_start_refusals_are_400(lead, agent, body, message):
    lead.post("/api/v1/policies", {"source": V1, "activate": True}, format="json")
    lead.post("/api/v1/policies", {"source": V2}, format="json")
    response = lead.post("/api/v1/policies/shadow", body, format="json")
    assert response.status_code == 400
    assert message in str(response.json()["detail"])
    assert not PolicyShadow.objects.exists()


def test_the_schema_documents_the_policies_tag(client, viewer):
    client.force_login(viewer)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/policies/{number}/activate" in schema
    assert '"policies"' in schema or "- policies" in schema


def test_nul_characters_are_refused_by_the_serializer(lead):
    response = lead.post("/api/v1/policies", {"source": "rules: []\x00"}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"]["source"] == ["Null characters are not allowed."]


def test_a_lone_surrogate_escaped_in_json_is_400(lead):
    body = '{"source": "rules:\\n  - id: a\\ud800\\n"}'
    response = lead.generic("POST", "/api/v1/policies", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"]["source"] == ["Surrogate characters are not allowed: U+D800."]
