"""Shadow mode: a draft evaluated beside the active policy for chosen agents, recorded once."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from apps.policy.engine import Proposal
from apps.policy.models import PolicyShadow, ShadowDecision
from apps.policy.selectors import active_policy, shadow_config
from apps.policy.services import (
    PolicyRefused,
    policy_shadow_evaluate,
    policy_shadow_start,
    policy_shadow_stop,
    policy_version_activate,
    policy_version_create,
)

pytestmark = pytest.mark.django_db

ACTIVE = "rules:\n  - id: k8s\n    effect: allow\n    match: {action_type: 'k8s.*'}\n"
DRAFT = ACTIVE + "  - id: shaky\n    effect: require_approval\n    when: {confidence_below: 0.8}\n"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def proposal(agent="k8s-healer", confidence=0.7):
    return Proposal(
        action_type="k8s.restart_deployment",
        target="k8s://prod/search/api",
        env="prod",
        risk="low",
        confidence=confidence,
        agent=agent,
        team="platform",
        autonomy_mode="auto_low_risk",
        rollback_plan="undo",
    )


@pytest.fixture
def versions():
    active, _ = policy_version_create(source=ACTIVE, created_by="sam")
    draft, _ = policy_version_create(source=DRAFT, created_by="sam", activate=False)
    return active, draft


def _propose(p, action_id):
    """What propose.py does: decide with the active policy, then give the shadow a look, all
    in one transaction."""
    with transaction.atomic():
        decision = active_policy().evaluate(p, now=NOW)
        policy_shadow_evaluate(proposal=p, active=decision, action_id=action_id, now=NOW)
    return decision


def test_differences_are_recorded_once_per_action(versions, other_agent):
    _, draft = versions
    shadow = policy_shadow_start(version=draft, agents=["k8s-healer"], started_by="sam")
    first = _propose(proposal(confidence=0.7), "act-1")
    assert first.status == "approved"
    _propose(proposal(confidence=0.7), "act-1")  # a retried proposal
    _propose(proposal(confidence=0.95), "act-2")
    rows = list(
        ShadowDecision.objects.order_by("action_id").values_list(
            "shadow_id",
            "version_id",
            "action_id",
            "agent",
            "active_version",
            "active_status",
            "shadow_status",
            "differs",
        )
    )
    assert rows == [
        (shadow.pk, draft.pk, "act-1", "k8s-healer", 1, "approved", "pending_approval", True),
        (shadow.pk, draft.pk, "act-2", "k8s-healer", 1, "approved", "approved", False),
    ]
    row = ShadowDecision.objects.get(action_id="act-1")
    assert row.shadow_reasons[0] == (
        "Needs approval by rule shaky (v2): confidence 0.70 is below 0.80."
    )
    assert row.active_reasons[0].startswith("Approved by the policy:")
    assert row.evaluated_at == NOW


def test_no_shadow_records_nothing_and_costs_no_query(versions, django_assert_num_queries):
    _propose(proposal(), "warm-up")  # fills the per-process cache
    decision = active_policy().evaluate(proposal(), now=NOW)
    with django_assert_num_queries(0):
        policy_shadow_evaluate(proposal=proposal(), active=decision, action_id="a", now=NOW)
    assert not ShadowDecision.objects.exists()


def test_agents_not_chosen_are_not_evaluated(
    versions, agent, other_agent, django_assert_num_queries
):
    _, draft = versions
    policy_shadow_start(version=draft, agents=["triage-bot"])
    _propose(proposal(agent="triage-bot"), "warm-up")
    decision = active_policy().evaluate(proposal(), now=NOW)
    with django_assert_num_queries(0):
        policy_shadow_evaluate(proposal=proposal(), active=decision, action_id="b", now=NOW)
    assert list(ShadowDecision.objects.values_list("action_id", flat=True)) == ["warm-up"]


def test_after_stop_nothing_more_is_recorded(versions, other_agent):
    _, draft = versions
    policy_shadow_start(version=draft, agents=["k8s-healer"])
    _propose(proposal(), "before")
    stopped = policy_shadow_stop(stopped_by="sam")
    assert (stopped.running, stopped.stopped_by) == (False, "sam")
    _propose(proposal(), "after")
    assert list(ShadowDecision.objects.values_list("action_id", flat=True)) == ["before"]
    assert policy_shadow_stop() is None


def test_other_processes_see_a_new_shadow_within_the_cache_lag(versions, other_agent):
    import time

    from apps.policy.selectors import SHADOW_CACHE_SECONDS

    _, draft = versions
    assert shadow_config() is None
    # Another process starts a shadow: this one keeps its cached "none" for up to 5 seconds.
    PolicyShadow.objects.create(version=draft, agents=["k8s-healer"])
    assert shadow_config() is None
    # The TTL runs on the monotonic clock, which time_machine does not move: really wait.
    time.sleep(SHADOW_CACHE_SECONDS + 0.2)
    config = shadow_config()
    assert config is not None
    assert (config.number, config.agents) == (2, frozenset({"k8s-healer"}))


def test_one_shadow_at_a_time(versions, other_agent):
    active, draft = versions
    policy_shadow_start(version=draft, agents=["k8s-healer"])
    with pytest.raises(PolicyRefused, match="already running; stop it first"):
        policy_shadow_start(version=draft, agents=["k8s-healer"])
    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyShadow.objects.create(version=draft, agents=["k8s-healer"])
    policy_shadow_stop()
    with pytest.raises(PolicyRefused, match="v1 is the active policy"):
        policy_shadow_start(version=active, agents=["k8s-healer"])
    with pytest.raises(PolicyRefused, match="No agent named nobody"):
        policy_shadow_start(version=draft, agents=["nobody"])
    with pytest.raises(PolicyRefused, match="at least one agent"):
        policy_shadow_start(version=draft, agents=[])


def test_activating_the_shadowed_version_stops_the_shadow(versions, other_agent):
    _, draft = versions
    policy_shadow_start(version=draft, agents=["k8s-healer"])
    policy_version_activate(version=draft, activated_by="sam")
    shadow = PolicyShadow.objects.get()
    assert (shadow.running, shadow.stopped_by) == (False, "sam")
    assert shadow_config() is None


def test_a_proposal_that_rolls_back_leaves_no_shadow_row(versions, other_agent):
    _, draft = versions
    policy_shadow_start(version=draft, agents=["k8s-healer"])
    with pytest.raises(RuntimeError), transaction.atomic():
        decision = active_policy().evaluate(proposal(), now=NOW)
        policy_shadow_evaluate(proposal=proposal(), active=decision, action_id="x", now=NOW)
        assert ShadowDecision.objects.filter(action_id="x").exists()
        raise RuntimeError("the proposal failed")
    assert not ShadowDecision.objects.exists()
