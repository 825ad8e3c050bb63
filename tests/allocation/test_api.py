"""/api/v1/allocation-rules: finops and admin only, clear 400s, order by position."""

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.billing.models import AllocationRule, AllocationRun
from tests.slo.api_helpers import person_api_fixture  # noqa: F401

pytestmark = pytest.mark.django_db
URL = "/api/v1/allocation-rules"
AGENT_RULE = {"name": "Agent tag", "kind": "tag", "tag_key": "opsdash-agent", "target": "agent"}


@pytest.fixture
def fin(person_api: Callable[..., APIClient]) -> APIClient:
    return person_api("fiona", "finops")


def test_viewer_approver_and_sre_lead_are_refused(person_api, fleet):
    rule = AllocationRule.objects.create(name="r", kind="tag", tag_key="team", target="team")
    for name, role in (("vera", "viewer"), ("avery", "approver"), ("sam", "sre_lead")):
        client = person_api(name, role)
        for response in (
            client.get(URL),
            client.post(URL, AGENT_RULE, format="json"),
            client.patch(f"{URL}/{rule.pk}", {"enabled": False}, format="json"),
            client.delete(f"{URL}/{rule.pk}"),
        ):
            assert response.status_code == 403
            assert response.json()["error"] == (
                "Allocation rules need the finops or admin role (a person's token or session)."
            )
    assert APIClient().get(URL).status_code in (401, 403)
    assert AllocationRule.objects.get().enabled is True


def test_finops_creates_lists_moves_updates_and_deletes(fin, person_api, fleet):
    first = fin.post(URL, AGENT_RULE, format="json")
    assert first.status_code == 201
    assert first.json()["position"] == 0 and first.json()["recompute_run"] is not None
    shared = {
        "name": "Shared cluster",
        "kind": "shared",
        "match_service": "*Kubernetes*",
        "split": "actions",
        "teams": ["Platform", "data"],
        "position": 0,
    }
    second = fin.post(URL, shared, format="json").json()
    listed = fin.get(URL).json()
    assert [(r["name"], r["position"]) for r in listed] == [("Shared cluster", 0), ("Agent tag", 1)]
    assert listed[0]["teams"] == ["data", "platform"]
    assert listed[0]["split"] == "actions" and listed[0]["value_map"] == {}
    moved = fin.patch(f"{URL}/{second['id']}", {"position": 5}, format="json")
    assert moved.json()["position"] == 1
    changed = fin.patch(
        f"{URL}/{first.json()['id']}", {"value_map": {"TB": "triage-bot"}}, format="json"
    )
    assert changed.status_code == 200
    assert changed.json()["value_map"] == {"TB": "triage-bot"}
    assert changed.json()["tag_key"] == "opsdash-agent"  # the fields not sent are kept
    admin = person_api("alex", "admin")
    assert admin.delete(f"{URL}/{second['id']}").status_code == 204
    assert list(AllocationRule.objects.values_list("name", flat=True)) == ["Agent tag"]
    # every change asked for a recompute (a create with a position is two: add, then move)
    assert AllocationRun.objects.count() == 6


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {**AGENT_RULE, "value_map": {"x": "no-such-agent"}},
            {
                "value_map": [
                    "No agent has the slug 'no-such-agent'; known agents: db-guardian, "
                    "k8s-healer, queue-medic, triage-bot."
                ]
            },
        ),
        (
            {"name": "s", "kind": "shared", "match_resource": "cluster/(shared", "teams": ["ops"]},
            {
                "match_resource": [
                    "Not a valid regular expression: missing ), unterminated subpattern at "
                    "position 8."
                ],
                "teams": ["No team has the slug 'ops'; known teams: data, payments, platform."],
            },
        ),
        (
            {"name": "s", "kind": "shared", "split": "by-vibes"},
            {
                "match_service": [
                    "Give at least one condition (provider, service, tag or resource): a shared "
                    "rule that matches everything would leave nothing for the rules after it."
                ],
                "split": ["Choose one of: even, actions, tokens."],
            },
        ),
        (
            {"name": "", "kind": "tag", "target": "person"},
            {
                "name": ["Give the rule a name: the chargeback names the rule behind each number."],
                "tag_key": ["Name the tag to read, e.g. opsdash-agent or team."],
                "target": ["Choose one of: agent, team."],
            },
        ),
        (
            {**AGENT_RULE, "colour": "red"},
            {
                "colour": [
                    "Unknown field; the fields are: name, kind, enabled, tag_key, target, value_map, "
                    "match_provider, match_service, match_tag_key, match_tag_value, match_resource, "
                    "split, teams."
                ]
            },
        ),
        ({**AGENT_RULE, "name": 7}, {"name": ["Send text."]}),
        ({**AGENT_RULE, "position": "first"}, {"position": ["Send a whole number (0 is first)."]}),
    ],
)
def test_bad_rules_get_400_naming_the_field(fin, fleet, body: dict[str, Any], errors):
    response = fin.post(URL, body, format="json")
    assert response.status_code == 400
    got = response.json()["detail"]
    for field, messages in errors.items():
        assert got[field] == messages, got
    assert not AllocationRule.objects.exists()


def test_duplicate_name_and_missing_rule(fin, fleet):
    fin.post(URL, AGENT_RULE, format="json")
    again = fin.post(URL, {**AGENT_RULE, "name": "agent TAG"}, format="json")
    assert again.status_code == 400
    assert "A rule named 'agent TAG' exists; names must differ." in str(again.json())
    assert fin.get(f"{URL}/999999").status_code == 404
    assert fin.post(URL, ["not", "an", "object"], format="json").status_code == 400
