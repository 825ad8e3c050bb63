"""Dry run: a draft re-decides the real proposals of a window; exact transition counts."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from apps.actions.models import Action
from apps.policy.dry_run import original_decision, policy_dry_run
from apps.policy.engine import CompiledPolicy
from apps.policy.schema import policy_parse
from tests.policy.factories import proposed_action

pytestmark = pytest.mark.django_db

DRAFT = """
freeze_windows:
  - name: sunday-maintenance
    timezone: Europe/Berlin
    days: [sun]
    from: "00:00"
    to: "23:59"
rules:
  - id: no-deletes
    effect: deny
    match: {action_type: "k8s.delete_*"}
  - id: k8s
    effect: allow
    match: {action_type: "k8s.*"}
  - id: shaky
    effect: require_approval
    when: {confidence_below: 0.7}
  - id: sunday
    effect: require_approval
    when: {in_freeze: true}
"""

# A Wednesday; the window is the 7 days before it.
UNTIL = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=7)


@pytest.fixture
def history(agent, other_agent):
    """other_agent (k8s-healer) runs auto_low_risk; agent (triage-bot) is in suggest mode."""
    tuesday = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    proposed_action(other_agent, "unchanged", tuesday)
    proposed_action(other_agent, "shaky-1", tuesday, confidence=0.5)
    proposed_action(other_agent, "shaky-2", tuesday, confidence=0.4, action_type="k8s.scale")
    proposed_action(other_agent, "delete-auto", tuesday, action_type="k8s.delete_pod")
    # Pending when proposed, then approved by a person: the policy's own answer was pending.
    proposed_action(
        agent, "delete-by-person", tuesday, action_type="k8s.delete_pod", decided_by="ada"
    )
    # Sunday 2026-11-22 08:00 in Berlin is 07:00 UTC: frozen under the draft.
    proposed_action(other_agent, "sunday", datetime(2026, 11, 22, 7, 0, tzinfo=UTC))
    # Saturday 22:30 UTC is Saturday 23:30 in Berlin: not frozen.
    proposed_action(other_agent, "saturday-night", datetime(2026, 11, 21, 22, 30, tzinfo=UTC))
    # Imported without any policy decision: nothing to compare with.
    proposed_action(other_agent, "imported", tuesday, decision="", decided_by="", policy_version="")
    # Outside the window, and an action that was never proposed.
    proposed_action(other_agent, "too-old", SINCE - timedelta(minutes=1), confidence=0.1)
    Action.objects.create(agent=other_agent, action_id="reported-only", proposed_at=tuesday)


def test_transitions_are_counted_exactly(history):
    report = policy_dry_run(policy=policy_parse(DRAFT), since=SINCE, until=UNTIL)
    assert report.transitions == [
        ("approved", "pending_approval", 3),
        ("approved", "denied", 1),
        ("pending_approval", "denied", 1),
    ]
    assert (report.evaluated, report.changed, report.unchanged, report.skipped) == (7, 5, 2, 1)
    assert {r.action_id for r in report.rows} == {
        "shaky-1",
        "shaky-2",
        "delete-auto",
        "delete-by-person",
        "sunday",
    }
    sunday = next(r for r in report.rows if r.action_id == "sunday")
    assert (sunday.before, sunday.after) == ("approved", "pending_approval")
    assert sunday.after_reasons[0] == (
        "Needs approval by rule sunday: change freeze 'sunday-maintenance' is in effect."
    )
    assert sunday.before_reasons == ["decided approved"]
    person = next(r for r in report.rows if r.action_id == "delete-by-person")
    assert (person.before, person.after, person.before_version) == (
        "pending_approval",
        "denied",
        "1",
    )


def test_rows_are_capped_but_counts_cover_everything(history):
    report = policy_dry_run(policy=policy_parse(DRAFT), since=SINCE, until=UNTIL, row_limit=2)
    assert (len(report.rows), report.changed, report.rows_truncated) == (2, 5, True)


def test_a_policy_that_agrees_changes_nothing(history):
    allow_all = CompiledPolicy(
        policy_parse("rules:\n  - id: all\n    effect: allow\n    match: {action_type: '*'}\n"),
        version=1,
    )
    report = policy_dry_run(policy=allow_all, since=SINCE, until=UNTIL)
    # triage-bot is in suggest mode: the one it proposed still needs a person.
    assert (report.transitions, report.rows) == ([], [])
    assert (report.evaluated, report.unchanged) == (7, 7)


def test_original_decision_is_the_policys_own():
    assert original_decision("approved", "policy") == "approved"
    assert original_decision("denied", "policy") == "denied"
    assert original_decision("approved", "ada") == "pending_approval"
    assert original_decision("rejected", "ada") == "pending_approval"
    assert original_decision("", "") == "pending_approval"


def test_ten_thousand_actions_in_well_under_two_seconds(other_agent, capsys):
    import uuid

    tuesday = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    Action.objects.bulk_create(
        [
            Action(
                agent=other_agent,
                action_id=f"bulk-{i}",
                proposal_event_id=uuid.uuid4(),
                proposed_at=tuesday - timedelta(seconds=i),
                action_type="k8s.delete_pod" if i % 10 == 0 else "k8s.restart_deployment",
                target=f"k8s://prod/svc-{i % 50}/api",
                env="prod",
                risk="low",
                confidence=0.5 if i % 3 == 0 else 0.9,
                rollback_plan="undo",
                parameters={"replicas": i % 20},
                decision="approved",
                decided_by="policy",
                policy_version="1",
                decision_reasons=["Approved by the policy."],
                status="approved",
            )
            for i in range(10_000)
        ],
        batch_size=2000,
    )
    started = time.perf_counter()
    report = policy_dry_run(policy=policy_parse(DRAFT), since=SINCE, until=UNTIL)
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\ndry run of 10,000 actions: {elapsed * 1000:.0f} ms")
    assert report.evaluated == 10_000
    assert report.transitions[0][:2] == ("approved", "pending_approval")
    assert sum(n for _, _, n in report.transitions) == report.changed
    assert elapsed < 2.0


def test_blast_radius_is_read_from_the_actions_parameters(other_agent):
    tuesday = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    for action_id, replicas in [("n40", 40), ("n12.5", 12.5), ("s40", "40"), ("b", True)]:
        proposed_action(other_agent, action_id, tuesday, parameters={"replicas": replicas})
    proposed_action(other_agent, "none", tuesday, parameters={})
    wide = policy_parse(
        "rules:\n  - id: k8s\n    effect: allow\n    match: {action_type: 'k8s.*'}\n"
        "  - id: wide\n    effect: require_approval\n    when: {blast_radius_above: 10}\n"
    )
    report = policy_dry_run(policy=wide, since=SINCE, until=UNTIL)
    assert sorted(r.action_id for r in report.rows) == ["n12.5", "n40"]
    n40 = next(r for r in report.rows if r.action_id == "n40")
    assert n40.after_reasons[0] == "Needs approval by rule wide: blast radius 40 is above 10."
