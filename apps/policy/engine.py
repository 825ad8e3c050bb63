"""Evaluating a proposal against a compiled policy: pure, in-process, no database.

Order of precedence: deny overrides everything; then the agent's autonomy (capped by the
policy's ceiling); an action runs without a person only when an allow rule covers it, its
effective risk is low and no require_approval condition holds. Everything else needs approval.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from fnmatch import translate
from typing import Any
from zoneinfo import ZoneInfo

from apps.core.durations import parse_ttl
from apps.policy.schema import FreezeWindow, Match, PolicyDocument, Rule

RISK_LEVEL = {"low": 0, "medium": 1, "high": 2, "critical": 3}
MODE_LEVEL = {"observe": 0, "suggest": 1, "auto_low_risk": 2}
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@dataclass(frozen=True)
class Proposal:
    """What the engine needs to know about a proposed action and its agent."""

    action_type: str
    target: str
    env: str
    risk: str
    confidence: float
    agent: str
    team: str
    autonomy_mode: str
    rollback_plan: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class Decision:
    status: str  # approved | pending_approval | denied | recorded
    reasons: list[str]
    matched_rules: list[str]
    policy_version: int | None
    effective_risk: str
    approvers_required: int
    decided_by_policy: bool
    separation_of_duties: bool = False
    escalate_after: timedelta | None = None
    expire_after: timedelta | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reasons": self.reasons,
            "matched_rules": self.matched_rules,
            "policy_version": self.policy_version,
            "effective_risk": self.effective_risk,
            "approvers_required": self.approvers_required,
        }

    def deadlines(self, now: datetime) -> dict[str, datetime]:
        """Escalation and expiry instants for a pending decision made at `now`."""
        if self.status != "pending_approval":
            return {}
        out = {}
        if self.escalate_after is not None:
            out["escalate_at"] = now + self.escalate_after
        if self.expire_after is not None:
            out["expires_at"] = now + self.expire_after
        return out


class _Matcher:
    """One Match compiled to regexes: a field left out matches anything."""

    __slots__ = ("fields",)

    def __init__(self, match: Match) -> None:
        self.fields: list[tuple[str, re.Pattern[str]]] = []
        for name in ("action_type", "target", "env", "agent", "team"):
            globs = getattr(match, name)
            if globs is None:
                continue
            patterns = [globs] if isinstance(globs, str) else globs
            self.fields.append(
                (name, re.compile("|".join(f"(?:{translate(p)})" for p in patterns)))
            )

    def __call__(self, proposal: Proposal) -> bool:
        return all(pattern.match(getattr(proposal, name)) for name, pattern in self.fields)


@dataclass
class _CompiledRule:
    rule: Rule
    matches: _Matcher


class CompiledPolicy:
    """A policy version ready to evaluate; build once per version and reuse."""

    def __init__(self, document: PolicyDocument, version: int | None = None) -> None:
        self.document = document
        self.version = version
        rules = [_CompiledRule(r, _Matcher(r.match)) for r in document.rules]
        self.deny = [r for r in rules if r.rule.effect == "deny"]
        self.allow = [r for r in rules if r.rule.effect == "allow"]
        self.require = [r for r in rules if r.rule.effect == "require_approval"]
        self.classes = [(_Matcher(c.match), c.risk) for c in document.risk_classification]
        self.runbooks = [re.compile(translate(r)) for r in document.runbooks]

    def tag(self, rule_id: str) -> str:
        return f"{rule_id} (v{self.version})" if self.version is not None else rule_id

    def evaluate(self, proposal: Proposal, *, now: datetime | None = None) -> Decision:
        now = now or datetime.now(UTC)
        effective_risk = self._effective_risk(proposal)
        approvers = self._approvers(effective_risk)
        matched: list[str] = []

        for compiled in self.deny:
            if compiled.matches(proposal):
                matched.append(compiled.rule.id)
                return Decision(
                    "denied",
                    [
                        f"Denied: `{proposal.action_type}` on {proposal.target} is refused by rule "
                        f"{self.tag(compiled.rule.id)}" + _desc(compiled.rule)
                    ],
                    matched,
                    self.version,
                    effective_risk,
                    0,
                    True,
                )

        mode = self._mode(proposal)
        if mode == "observe":
            return Decision(
                "recorded",
                [
                    f"Recorded: {proposal.agent} runs in observe mode, so nothing it proposes is executed."
                ],
                matched,
                self.version,
                effective_risk,
                0,
                True,
            )

        reasons: list[str] = []
        allowed_by = next((c for c in self.allow if c.matches(proposal)), None)
        if allowed_by is None:
            reasons.append(
                f"No rule allows `{proposal.action_type}` on {proposal.target} in {proposal.env}; "
                "the default is to ask a person."
            )
        else:
            matched.append(allowed_by.rule.id)

        for compiled in self.require:
            if not compiled.matches(proposal):
                continue
            why = self._conditions(compiled.rule, proposal, effective_risk, now)
            if why is None:
                continue
            matched.append(compiled.rule.id)
            reasons.append(f"Needs approval by rule {self.tag(compiled.rule.id)}: {why}.")
            if compiled.rule.approvers:
                approvers = max(approvers, compiled.rule.approvers)

        if effective_risk != "low":
            raised = (
                " (raised by the policy's classification)"
                if effective_risk != proposal.risk
                else ""
            )
            reasons.append(f"Effective risk is {effective_risk}{raised}: a person decides.")
        if mode == "suggest":
            reasons.append(f"{proposal.agent} is in suggest mode: every action needs approval.")

        if not reasons and allowed_by is not None:
            return Decision(
                "approved",
                [
                    f"Approved by the policy: `{proposal.action_type}` is allowed by rule "
                    f"{self.tag(allowed_by.rule.id)}, its risk is low and {proposal.agent} may act alone."
                ],
                matched,
                self.version,
                effective_risk,
                0,
                True,
            )
        plural = "s" if approvers > 1 else ""
        reasons.append(f"{approvers} distinct approver{plural} needed.")
        separation = self.document.approvers.separation_of_duties
        if separation:
            reasons.append("Separation of duties: the agent's owners cannot be its only approvers.")
        deadline = getattr(self.document.deadlines, effective_risk)
        return Decision(
            "pending_approval",
            reasons,
            matched,
            self.version,
            effective_risk,
            approvers,
            False,
            separation_of_duties=separation,
            escalate_after=parse_ttl(deadline.escalate_after or ""),
            expire_after=parse_ttl(deadline.expire_after or ""),
        )

    def _effective_risk(self, proposal: Proposal) -> str:
        level = RISK_LEVEL.get(proposal.risk, 3)
        for matcher, risk in self.classes:
            if matcher(proposal):
                level = max(level, RISK_LEVEL[risk])
        return next(name for name, value in RISK_LEVEL.items() if value == level)

    def _approvers(self, risk: str) -> int:
        return int(getattr(self.document.approvers, risk))

    def _mode(self, proposal: Proposal) -> str:
        ceiling = self.document.autonomy_ceiling.get(proposal.agent)
        mode = proposal.autonomy_mode
        if ceiling is not None and MODE_LEVEL[ceiling] < MODE_LEVEL.get(mode, 0):
            return ceiling
        return mode

    def _conditions(self, rule: Rule, proposal: Proposal, risk: str, now: datetime) -> str | None:
        """Why a require_approval rule holds (None when it does not); no `when` means always."""
        when = rule.when
        if when is None:
            return rule.description or f"`{proposal.action_type}` matches"
        if when.risk_at_least and RISK_LEVEL[risk] >= RISK_LEVEL[when.risk_at_least]:
            return f"risk {risk} is at least {when.risk_at_least}"
        if when.confidence_below is not None and proposal.confidence < when.confidence_below:
            return f"confidence {proposal.confidence:.2f} is below {when.confidence_below:.2f}"
        if when.blast_radius_above is not None:
            radius = _number(proposal.parameters.get(self.document.blast_radius_parameter))
            if radius is not None and radius > when.blast_radius_above:
                return f"blast radius {radius:g} is above {when.blast_radius_above}"
        if when.missing_rollback_plan and not (proposal.rollback_plan or "").strip():
            return "the proposal has no rollback plan"
        if when.no_runbook and not any(r.match(proposal.action_type) for r in self.runbooks):
            return f"`{proposal.action_type}` has no registered runbook"
        if when.in_freeze:
            window = next((w for w in self.document.freeze_windows if in_window(w, now)), None)
            if window is not None:
                return f"change freeze {window.name!r} is in effect"
        return None


def _desc(rule: Rule) -> str:
    return f": {rule.description}" if rule.description else "."


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def in_window(window: FreezeWindow, now: datetime) -> bool:
    """Whether `now` falls in the freeze window, read in the window's own time zone."""
    local = now.astimezone(ZoneInfo(window.timezone))
    if window.days is not None:
        if DAYS[local.weekday()] not in window.days:
            return False
        start = time.fromisoformat(window.from_time or "00:00")
        end = time.fromisoformat(window.to_time or "23:59")
        return start <= local.time().replace(second=0, microsecond=0) <= end
    start_dt = datetime.fromisoformat(window.start or "").replace(tzinfo=ZoneInfo(window.timezone))
    end_dt = datetime.fromisoformat(window.end or "").replace(tzinfo=ZoneInfo(window.timezone))
    return start_dt <= local <= end_dt
