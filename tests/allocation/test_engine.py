"""Allocation by rules, exactly: tag rules, shared splits, first match, unallocated, rounding."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from apps.actions.models import Action
from apps.billing.allocation import split_exact
from apps.billing.models import CostAllocation, CostLineItem
from apps.billing.rules import rule_create
from apps.costs.models import LlmUsage
from tests.allocation.conftest import assert_exact, import_bill, line, shares

pytestmark = pytest.mark.django_db
D = Decimal


def tag_rule(name: str, key: str, target: str = "agent", **kw: Any) -> Any:
    return rule_create(
        data={"name": name, "kind": "tag", "tag_key": key, "target": target, **kw}, user=None
    )


def shared_rule(name: str, split: str = "even", **kw: Any) -> Any:
    return rule_create(data={"name": name, "kind": "shared", "split": split, **kw}, user=None)


def test_split_exact_uses_largest_remainder_to_the_storage_unit():
    assert split_exact(D("100"), [1, 1, 1]) == [
        D("33.333333333334"),
        D("33.333333333333"),
        D("33.333333333333"),
    ]
    # 0.000000000005 units split 1:2:2 -> 1, 2, 2 exactly; 0.000000000001 * 7 by 1:1:1
    assert split_exact(D("0.000000000007"), [1, 1, 1]) == [
        D("0.000000000003"),
        D("0.000000000002"),
        D("0.000000000002"),
    ]
    assert split_exact(D("-10"), [1, 2]) == [D("-3.333333333333"), D("-6.666666666667")]
    assert sum(split_exact(D("0.05"), [3, 3, 1])) == D("0.05")


def test_tag_rules_give_the_whole_line_to_an_agent_or_team_first_match_wins(fleet, tmp_path: Path):
    tag_rule("Agent tag", "opsdash-agent")
    tag_rule("Team tag", "team", target="team")
    tag_rule("Cost centre", "CostCentre", target="team", value_map={"CC-2040": "payments"})
    import_bill(
        tmp_path,
        [
            # both tags: the agent rule is first, its team follows the agent (not the tag)
            line("12.34", effective="11.00", tags={"opsdash-agent": "Queue-Medic", "team": "data"}),
            line("5.00", tags={"team": "data"}),
            line("7.77", tags={"costcentre": "CC-2040"}),  # keys match whatever their case
            line("1.50", tags={"opsdash-agent": "nobody", "CostCentre": "CC-9999"}),  # no match
            line("2.25"),  # untagged
        ],
    )
    assert shares() == [
        ("data", None, "tag", "Team tag", D("5"), D("5")),
        ("payments", None, "tag", "Cost centre", D("7.77"), D("7.77")),
        ("payments", "queue-medic", "tag", "Agent tag", D("12.34"), D("11")),
        (None, None, "unallocated", "", D("1.5"), D("1.5")),
        (None, None, "unallocated", "", D("2.25"), D("2.25")),
    ]
    owners = sorted(
        (
            str(i.billed_cost.normalize()),
            i.team.slug if i.team else None,
            i.agent.slug if i.agent else None,
        )
        for i in CostLineItem.objects.select_related("team", "agent")
    )
    assert owners == [
        ("1.5", None, None),
        ("12.34", "payments", "queue-medic"),
        ("2.25", None, None),
        ("5", "data", None),
        ("7.77", "payments", None),
    ]
    assert_exact()


def test_shared_even_split_of_a_cost_that_does_not_divide(fleet, tmp_path: Path):
    shared_rule(
        "Shared cluster", match_service="*Kubernetes*", teams=["platform", "payments", "data"]
    )
    import_bill(
        tmp_path,
        [
            line("100.00", effective="0.10", service="Amazon Elastic Kubernetes Service"),
            line("3.00", service="Amazon EC2"),
        ],
    )
    assert shares() == [
        ("data", None, "shared_even", "Shared cluster", D("33.333333333334"), D("0.033333333334")),
        (
            "payments",
            None,
            "shared_even",
            "Shared cluster",
            D("33.333333333333"),
            D("0.033333333333"),
        ),
        (
            "platform",
            None,
            "shared_even",
            "Shared cluster",
            D("33.333333333333"),
            D("0.033333333333"),
        ),
        (None, None, "unallocated", "", D("3"), D("3")),
    ]
    # A shared line item has no single owner.
    assert set(CostLineItem.objects.values_list("team_id", "agent_id")) == {(None, None)}
    assert_exact()


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=UTC)


def test_shared_by_actions_and_by_tokens_in_the_charge_period(fleet, tmp_path: Path):
    agents = fleet["agents"]
    # Oct 1: platform 2 actions, payments 1, data 0 (and one the day after, not counted).
    for n, (slug, day) in enumerate(
        [("triage-bot", 1), ("k8s-healer", 1), ("queue-medic", 1), ("db-guardian", 2)]
    ):
        Action.objects.create(action_id=f"act-{n}", agent=agents[slug], proposed_at=at(day))
    # Oct 1 tokens: data 700, payments 300 (platform none).
    for slug, tokens in (("db-guardian", 500), ("db-guardian", 200), ("queue-medic", 300)):
        agent = agents[slug]
        LlmUsage.objects.create(
            event_id=uuid.uuid4(),
            ts=at(1),
            agent=agent,
            team_id=agent.team_id,
            provider="anthropic",
            model="claude-haiku-4-5",
            input_tokens=tokens - 100,
            output_tokens=100,
            cost_source="unpriced",
            energy_wh=0,
            gco2e=0,
            grid_region="x",
        )
    shared_rule("Logs by actions", split="actions", match_service="CloudWatch")
    shared_rule("Queue by tokens", split="tokens", match_tag_key="shared", match_tag_value="queue")
    import_bill(
        tmp_path,
        [
            line("10.00", service="CloudWatch"),
            line("1.00", service="SQS", tags={"Shared": "Queue"}),
            line("4.00", service="CloudWatch", day=3),  # nobody acted on Oct 3: even
        ],
    )
    assert shares() == [
        ("data", None, "shared_even", "Logs by actions", D("1.333333333334"), D("1.333333333334")),
        ("data", None, "shared_tokens", "Queue by tokens", D("0.7"), D("0.7")),
        (
            "payments",
            None,
            "shared_actions",
            "Logs by actions",
            D("3.333333333333"),
            D("3.333333333333"),
        ),
        (
            "payments",
            None,
            "shared_even",
            "Logs by actions",
            D("1.333333333333"),
            D("1.333333333333"),
        ),
        ("payments", None, "shared_tokens", "Queue by tokens", D("0.3"), D("0.3")),
        (
            "platform",
            None,
            "shared_actions",
            "Logs by actions",
            D("6.666666666667"),
            D("6.666666666667"),
        ),
        (
            "platform",
            None,
            "shared_even",
            "Logs by actions",
            D("1.333333333333"),
            D("1.333333333333"),
        ),
    ]
    assert_exact()


def test_shared_rule_conditions_provider_tag_and_resource_pattern(fleet, tmp_path: Path):
    shared_rule(
        "GCP logging",
        provider="gcp",
        match_provider="Google Cloud",
        match_resource=r"^projects/shared-[a-z]+/logs",
        teams=["data", "payments"],
    )
    import_bill(
        tmp_path,
        [
            line("9.99", provider="Google Cloud", resource="projects/shared-obs/logs/app"),
            line("1.00", provider="Google Cloud", resource="projects/team-a/logs/app"),
            line("2.00", provider="AWS", resource="projects/shared-obs/logs/app"),
        ],
    )
    assert shares() == [
        ("data", None, "shared_even", "GCP logging", D("4.995"), D("4.995")),
        ("payments", None, "shared_even", "GCP logging", D("4.995"), D("4.995")),
        (None, None, "unallocated", "", D("1"), D("1")),
        (None, None, "unallocated", "", D("2"), D("2")),
    ]


def test_restated_bill_reallocates_without_doubling(fleet, tmp_path: Path):
    tag_rule("Agent tag", "opsdash-agent")
    first = [line("10.00", tags={"opsdash-agent": "triage-bot"}), line("4.00")]
    import_bill(tmp_path, first, "october.csv")
    restated = [
        line("12.00", tags={"opsdash-agent": "triage-bot"}),
        line("1.00", tags={"opsdash-agent": "db-guardian"}),
    ]
    import_bill(tmp_path, restated, "october-restated.csv")
    assert CostLineItem.objects.count() == 2
    assert shares() == [
        ("data", "db-guardian", "tag", "Agent tag", D("1"), D("1")),
        ("platform", "triage-bot", "tag", "Agent tag", D("12"), D("12")),
    ]
    assert CostAllocation.objects.count() == 2
