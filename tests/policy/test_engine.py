"""Policy evaluation: every rule kind, deny overriding everything, autonomy modes."""

from datetime import UTC, datetime

import pytest

from apps.policy.engine import CompiledPolicy, Proposal
from apps.policy.schema import PolicyInvalid, policy_parse

POLICY = """
description: test policy
runbooks: ["k8s.restart_*", "k8s.scale_deployment"]
autonomy_ceiling:
  capped-bot: suggest
risk_classification:
  - match: {action_type: "db.*"}
    risk: high
  - match: {target: "k8s://prod/payments/*"}
    risk: medium
freeze_windows:
  - name: black-friday
    timezone: America/New_York
    start: "2026-11-27T00:00"
    end: "2026-11-30T23:59"
  - name: weekends
    timezone: Europe/Berlin
    days: [sat, sun]
    from: "00:00"
    to: "23:59"
approvers: {high: 2, critical: 3}
rules:
  - id: no-destructive-db
    effect: deny
    description: never drop or truncate
    match: {action_type: ["db.drop_*", "db.truncate"]}
  - id: k8s-everywhere
    effect: allow
    match: {action_type: "k8s.*", target: "k8s://*/*/*", env: [prod, staging]}
  - id: db-maintenance
    effect: allow
    match: {action_type: "db.vacuum_table", team: data}
  - id: shaky
    effect: require_approval
    match: {env: prod}
    when: {confidence_below: 0.6}
  - id: big-blast
    effect: require_approval
    when: {blast_radius_above: 10}
  - id: need-rollback
    effect: require_approval
    when: {missing_rollback_plan: true}
  - id: need-runbook
    effect: require_approval
    when: {no_runbook: true}
  - id: freeze
    effect: require_approval
    when: {in_freeze: true}
    approvers: 2
"""

WEDNESDAY = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy():
    return CompiledPolicy(policy_parse(POLICY), version=12)


def proposal(**overrides):
    values = dict(
        action_type="k8s.restart_deployment",
        target="k8s://prod/search/api",
        env="prod",
        risk="low",
        confidence=0.9,
        agent="k8s-healer",
        team="platform",
        autonomy_mode="auto_low_risk",
        rollback_plan="re-apply the previous revision",
        parameters={"replicas": 3},
    )
    values.update(overrides)
    return Proposal(**values)


def test_allowed_low_risk_action_runs_without_a_person(policy):
    decision = policy.evaluate(proposal(), now=WEDNESDAY)
    assert decision.status == "approved"
    assert decision.matched_rules == ["k8s-everywhere"]
    assert decision.reasons == [
        "Approved by the policy: `k8s.restart_deployment` is allowed by rule k8s-everywhere (v12), "
        "its risk is low and k8s-healer may act alone."
    ]


def test_deny_overrides_everything(policy):
    decision = policy.evaluate(
        proposal(action_type="db.drop_table", target="pg://prod/orders"), now=WEDNESDAY
    )
    assert decision.status == "denied"
    assert decision.reasons == [
        "Denied: `db.drop_table` on pg://prod/orders is refused by rule no-destructive-db (v12): never drop or truncate"
    ]
    observe = policy.evaluate(
        proposal(action_type="db.truncate", autonomy_mode="observe"), now=WEDNESDAY
    )
    assert observe.status == "denied"


def test_default_is_to_ask_a_person(policy):
    decision = policy.evaluate(proposal(action_type="cloud.resize_instance"), now=WEDNESDAY)
    assert decision.status == "pending_approval"
    assert "No rule allows `cloud.resize_instance`" in decision.reasons[0]
    empty = CompiledPolicy(policy_parse(""), version=None).evaluate(proposal(), now=WEDNESDAY)
    assert empty.status == "pending_approval"


def test_resource_boundaries_limit_an_allow_rule(policy):
    wrong_env = policy.evaluate(proposal(env="dev"), now=WEDNESDAY)
    assert wrong_env.status == "pending_approval"
    other_team = policy.evaluate(
        proposal(action_type="db.vacuum_table", team="payments", risk="low"), now=WEDNESDAY
    )
    assert "No rule allows" in other_team.reasons[0]


@pytest.mark.parametrize(
    ("overrides", "rule", "phrase"),
    [
        ({"confidence": 0.42}, "shaky", "confidence 0.42 is below 0.60"),
        ({"parameters": {"replicas": 40}}, "big-blast", "blast radius 40 is above 10"),
        ({"rollback_plan": None}, "need-rollback", "no rollback plan"),
        (
            {"action_type": "k8s.cordon_node"},
            "need-runbook",
            "`k8s.cordon_node` has no registered runbook",
        ),
    ],
)
def test_each_approval_condition(policy, overrides, rule, phrase):
    decision = policy.evaluate(proposal(**overrides), now=WEDNESDAY)
    assert decision.status == "pending_approval"
    assert rule in decision.matched_rules
    assert any(phrase in r and f"{rule} (v12)" in r for r in decision.reasons), decision.reasons


def test_freeze_windows_in_their_time_zone(policy):
    # 2026-11-27 03:00 UTC is still Nov 26 in New York: no freeze yet.
    assert (
        policy.evaluate(proposal(), now=datetime(2026, 11, 27, 3, 0, tzinfo=UTC)).status
        == "approved"
    )
    frozen = policy.evaluate(proposal(), now=datetime(2026, 11, 27, 6, 0, tzinfo=UTC))
    assert frozen.status == "pending_approval"
    assert "change freeze 'black-friday' is in effect" in " ".join(frozen.reasons)
    assert frozen.approvers_required == 2
    # Saturday 00:30 in Berlin is Friday 23:30 UTC.
    weekend = policy.evaluate(proposal(), now=datetime(2026, 11, 20, 23, 30, tzinfo=UTC))
    assert "weekends" in " ".join(weekend.reasons)


def test_effective_risk_is_the_higher_of_claim_and_classification(policy):
    decision = policy.evaluate(proposal(target="k8s://prod/payments/api"), now=WEDNESDAY)
    assert decision.effective_risk == "medium"
    assert decision.status == "pending_approval"
    assert "raised by the policy's classification" in " ".join(decision.reasons)
    db = policy.evaluate(
        proposal(action_type="db.vacuum_table", team="data", target="pg://prod/x"), now=WEDNESDAY
    )
    assert (db.effective_risk, db.approvers_required) == ("high", 2)
    critical = policy.evaluate(proposal(risk="critical"), now=WEDNESDAY)
    assert critical.approvers_required == 3


def test_autonomy_modes_and_the_ceiling(policy):
    assert policy.evaluate(proposal(autonomy_mode="observe"), now=WEDNESDAY).status == "recorded"
    suggest = policy.evaluate(proposal(autonomy_mode="suggest"), now=WEDNESDAY)
    assert suggest.status == "pending_approval"
    assert "suggest mode" in " ".join(suggest.reasons)
    capped = policy.evaluate(proposal(agent="capped-bot"), now=WEDNESDAY)
    assert capped.status == "pending_approval"


@pytest.mark.parametrize(
    ("text", "line", "phrase"),
    [
        (
            "rules:\n  - id: a\n    effect: allow\n  - id: b\n    effect: maybe\n",
            5,
            "Invalid enum value 'maybe'",
        ),
        ("rules:\n  - id: a\n    effect: allow\n    mtch: {}\n", 2, "unknown field `mtch`"),
        ("rules:\n  - id: a\n    effect: deny\n  - id: a\n    effect: allow\n", 4, "used twice"),
        (
            "freeze_windows:\n  - name: x\n    timezone: Mars/Olympus\n    days: [sat]\n",
            3,
            "unknown time zone",
        ),
        ("freeze_windows:\n  - name: x\n    start: soon\n    end: later\n", 3, "not a date"),
        ("rules: [\n", None, "not valid YAML"),
        ("- just a list\n", 1, "must be a mapping"),
    ],
)
def test_errors_name_the_offending_line(text, line, phrase):
    with pytest.raises(PolicyInvalid) as excinfo:
        policy_parse(text)
    error = excinfo.value.errors[0]
    assert phrase in str(error)
    if line is not None:
        assert error.line == line


BOUNDARIES = """
rules:
  - id: healer-in-staging
    effect: allow
    match: {action_type: "k8s.*", agent: "k8s-healer", env: staging, target: "k8s://staging/*"}
  - id: payments-team-restarts
    effect: allow
    match: {action_type: ["k8s.restart_*", "k8s.rollout_*"], team: payments, target: "k8s://*/payments/*"}
  - id: no-node-drain
    effect: deny
    match: {action_type: "k8s.drain_*"}
  - id: db-never
    effect: deny
    match: {action_type: "db.*", env: prod}
  - id: db-vacuum
    effect: allow
    match: {action_type: "db.vacuum_*"}
  - id: risky
    effect: require_approval
    when: {risk_at_least: medium}
"""


@pytest.fixture(scope="module")
def bounded():
    return CompiledPolicy(policy_parse(BOUNDARIES), version=3)


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        (
            {"agent": "k8s-healer", "env": "staging", "target": "k8s://staging/search/api"},
            "approved",
        ),
        # Same agent, outside its environment or its targets: a person decides.
        (
            {"agent": "k8s-healer", "env": "prod", "target": "k8s://staging/search/api"},
            "pending_approval",
        ),
        (
            {"agent": "k8s-healer", "env": "staging", "target": "k8s://prod/search/api"},
            "pending_approval",
        ),
        (
            {"agent": "other-bot", "env": "staging", "target": "k8s://staging/search/api"},
            "pending_approval",
        ),
        # Team boundary with a list of globs on action_type.
        ({"team": "payments", "target": "k8s://prod/payments/api"}, "approved"),
        (
            {
                "team": "payments",
                "action_type": "k8s.rollout_undo",
                "target": "k8s://prod/payments/api",
            },
            "approved",
        ),
        ({"team": "search", "target": "k8s://prod/payments/api"}, "pending_approval"),
        ({"team": "payments", "target": "k8s://prod/orders/api"}, "pending_approval"),
        (
            {
                "team": "payments",
                "action_type": "k8s.scale_deployment",
                "target": "k8s://prod/payments/api",
            },
            "pending_approval",
        ),
    ],
)
def test_target_boundaries_per_agent_team_and_env(bounded, overrides, status):
    assert bounded.evaluate(proposal(**overrides), now=WEDNESDAY).status == status


def test_deny_wins_over_a_matching_allow_and_over_auto_mode(bounded):
    decision = bounded.evaluate(
        proposal(action_type="db.vacuum_table", target="pg://prod/orders", env="prod"),
        now=WEDNESDAY,
    )
    assert (decision.status, decision.matched_rules) == ("denied", ["db-never"])
    assert decision.reasons == [
        "Denied: `db.vacuum_table` on pg://prod/orders is refused by rule db-never (v3)."
    ]
    assert decision.decided_by_policy is True
    staging = bounded.evaluate(
        proposal(action_type="db.vacuum_table", target="pg://staging/orders", env="staging"),
        now=WEDNESDAY,
    )
    assert staging.status == "approved"
    drain = bounded.evaluate(
        proposal(action_type="k8s.drain_node", autonomy_mode="suggest"), now=WEDNESDAY
    )
    assert drain.status == "denied"


def test_risk_at_least_condition(bounded):
    decision = bounded.evaluate(
        proposal(team="payments", target="k8s://prod/payments/api", risk="medium"), now=WEDNESDAY
    )
    assert decision.status == "pending_approval"
    assert "Needs approval by rule risky (v3): risk medium is at least medium." in decision.reasons


def test_classification_never_lowers_the_agents_claim(policy):
    decision = policy.evaluate(
        proposal(target="k8s://prod/payments/api", risk="high"), now=WEDNESDAY
    )
    assert decision.effective_risk == "high"
    assert "raised by the policy's classification" not in " ".join(decision.reasons)


def test_approvers_default_to_two_for_high_and_critical():
    plain = CompiledPolicy(policy_parse("rules: []"), version=1)
    counts = {
        risk: plain.evaluate(proposal(risk=risk), now=WEDNESDAY).approvers_required
        for risk in ("low", "medium", "high", "critical")
    }
    assert counts == {"low": 1, "medium": 1, "high": 2, "critical": 2}
    high = plain.evaluate(proposal(risk="high"), now=WEDNESDAY)
    assert high.reasons[-1] == "2 distinct approvers needed."


def test_a_rule_can_ask_for_more_approvers_and_separation_of_duties():
    doc = policy_parse(
        "approvers: {separation_of_duties: true}\n"
        "rules:\n  - id: prod-careful\n    effect: require_approval\n"
        "    match: {env: prod}\n    approvers: 3\n"
    )
    decision = CompiledPolicy(doc, version=5).evaluate(proposal(), now=WEDNESDAY)
    assert (decision.approvers_required, decision.separation_of_duties) == (3, True)
    assert "Separation of duties: the agent's owners cannot be its only approvers." in (
        decision.reasons
    )


def test_autonomy_ceiling_of_observe_records_only():
    doc = policy_parse(
        "autonomy_ceiling: {watcher: observe}\n"
        "rules:\n  - id: all\n    effect: allow\n    match: {action_type: '*'}\n"
    )
    compiled = CompiledPolicy(doc, version=2)
    assert compiled.evaluate(proposal(agent="watcher"), now=WEDNESDAY).status == "recorded"
    # The ceiling caps, it never raises: an agent in suggest mode stays in suggest mode.
    assert compiled.evaluate(proposal(autonomy_mode="suggest"), now=WEDNESDAY).status == (
        "pending_approval"
    )
    assert compiled.evaluate(proposal(), now=WEDNESDAY).status == "approved"


def test_blast_radius_ignores_values_that_are_not_numbers(policy):
    for replicas in ("40", True, None, [40]):
        decision = policy.evaluate(proposal(parameters={"replicas": replicas}), now=WEDNESDAY)
        assert decision.status == "approved", replicas
    custom = CompiledPolicy(
        policy_parse(
            "blast_radius_parameter: hosts\n"
            "rules:\n  - id: wide\n    effect: require_approval\n"
            "    when: {blast_radius_above: 5}\n"
        ),
        version=1,
    )
    decision = custom.evaluate(proposal(parameters={"hosts": 6.5}), now=WEDNESDAY)
    assert "Needs approval by rule wide (v1): blast radius 6.5 is above 5." in decision.reasons


def test_weekly_freeze_window_respects_its_hours():
    doc = policy_parse(
        "freeze_windows:\n  - name: evening\n    timezone: Asia/Tokyo\n"
        "    days: [wed]\n    from: '18:00'\n    to: '23:00'\n"
        "rules:\n  - id: all\n    effect: allow\n    match: {action_type: '*'}\n"
        "  - id: freeze\n    effect: require_approval\n    when: {in_freeze: true}\n"
    )
    compiled = CompiledPolicy(doc, version=1)
    # 09:30 UTC is 18:30 in Tokyo (Wednesday): frozen. 14:30 UTC is 23:30 there: not.
    inside = compiled.evaluate(proposal(), now=datetime(2026, 11, 25, 9, 30, tzinfo=UTC))
    assert inside.status == "pending_approval"
    assert "change freeze 'evening' is in effect" in " ".join(inside.reasons)
    after = compiled.evaluate(proposal(), now=datetime(2026, 11, 25, 14, 30, tzinfo=UTC))
    assert after.status == "approved"


def test_deadlines_per_effective_risk():
    from datetime import timedelta

    doc = policy_parse("deadlines:\n  high: {escalate_after: 10m, expire_after: 1h}\n")
    compiled = CompiledPolicy(doc, version=1)
    high = compiled.evaluate(proposal(risk="high"), now=WEDNESDAY)
    assert high.deadlines(WEDNESDAY) == {
        "escalate_at": WEDNESDAY + timedelta(minutes=10),
        "expires_at": WEDNESDAY + timedelta(hours=1),
    }
    low = compiled.evaluate(proposal(risk="low"), now=WEDNESDAY)
    assert low.deadlines(WEDNESDAY) == {
        "escalate_at": WEDNESDAY + timedelta(hours=4),
        "expires_at": WEDNESDAY + timedelta(hours=24),
    }
    allowed = CompiledPolicy(
        policy_parse("rules:\n  - id: all\n    effect: allow\n    match: {action_type: '*'}\n"),
        version=1,
    ).evaluate(proposal(), now=WEDNESDAY)
    assert allowed.status == "approved"
    assert allowed.deadlines(WEDNESDAY) == {}


@pytest.mark.parametrize(
    ("text", "line", "phrase"),
    [
        ("autonomy_ceiling:\n  a: suggest\n  bot: reckless\n", 3, "Invalid enum value 'reckless'"),
        ("rules:\n  - id: a\n    effect: allow\n    when: {no_runbook: true}\n", 4, "only applies"),
        ("deadlines:\n  high: {escalate_after: soon}\n", 2, "Expected `str` matching regex"),
        ("x: \ud800\n", 1, "not valid Unicode"),
        ("rules: 5\n", 1, "Expected `array`, got `int`"),
    ],
)
def test_more_errors_name_their_line(text, line, phrase):
    with pytest.raises(PolicyInvalid) as excinfo:
        policy_parse(text)
    error = excinfo.value.errors[0]
    assert phrase in str(error)
    assert error.line == line
