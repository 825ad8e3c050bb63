"""Dry run: what a draft policy would have decided for the real proposals of a past window."""

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Case, CharField, FloatField, Func, When
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast
from django.db.models.lookups import Exact

from apps.actions.models import Action
from apps.policy.engine import CompiledPolicy, Proposal
from apps.policy.schema import PolicyDocument

DEFAULT_DAYS = 7
MAX_DAYS = 90
# Changed actions listed on the page; the counts always cover every action in the window.
ROW_LIMIT = 500
# Rows fetched per round trip: large enough that 10,000 actions need only a few.
CHUNK = 2000

_FIELDS = (
    "action_id",
    "proposed_at",
    "action_type",
    "target",
    "env",
    "risk",
    "confidence",
    "rollback_plan",
    "blast_radius",
    "decision",
    "decided_by",
    "policy_version",
    "agent__slug",
    "agent__team__slug",
    "agent__autonomy_mode",
)


@dataclass(frozen=True)
class DryRunRow:
    action_id: str
    proposed_at: datetime
    agent: str
    action_type: str
    target: str
    before: str
    after: str
    before_version: str
    before_reasons: list[str]
    after_reasons: list[str]


@dataclass
class DryRunReport:
    since: datetime
    until: datetime
    version: int | None
    evaluated: int = 0
    unchanged: int = 0
    # Proposals that never got a policy decision (imported ones): nothing to compare with.
    skipped: int = 0
    transitions: list[tuple[str, str, int]] = field(default_factory=list)
    rows: list[DryRunRow] = field(default_factory=list)
    changed: int = 0
    elapsed_ms: float = 0.0

    @property
    def rows_truncated(self) -> bool:
        return self.changed > len(self.rows)


def original_decision(decision: str, decided_by: str) -> str:
    """What the policy itself answered: its own final decision, else it asked a person."""
    return decision if decided_by == "policy" else "pending_approval"


def policy_dry_run(
    *,
    policy: CompiledPolicy | PolicyDocument,
    since: datetime,
    until: datetime,
    row_limit: int = ROW_LIMIT,
) -> DryRunReport:
    """Re-decides every proposal made in [since, until) with `policy`, as of its proposal time
    (so freeze windows apply as they would have), with each agent's current autonomy mode.

    Read-only; streams the actions so a long window does not load them all at once.
    """
    compiled = policy if isinstance(policy, CompiledPolicy) else CompiledPolicy(policy)
    started = time.perf_counter()
    report = DryRunReport(since=since, until=until, version=compiled.version)
    counts: Counter[tuple[str, str]] = Counter()
    # The engine reads one parameter (the blast radius); decoding only that one, not every
    # action's whole parameters document, is most of the speed of a long window.
    radius_name = compiled.document.blast_radius_parameter
    rows = (
        Action.objects.filter(
            proposal_event_id__isnull=False, proposed_at__gte=since, proposed_at__lt=until
        )
        .annotate(blast_radius=_number_parameter(radius_name))
        .order_by("-proposed_at", "-id")
        .values_list(*_FIELDS)
        .iterator(chunk_size=CHUNK)
    )
    evaluate = compiled.evaluate
    for (
        action_id,
        proposed_at,
        action_type,
        target,
        env,
        risk,
        confidence,
        rollback_plan,
        blast_radius,
        decision,
        decided_by,
        policy_version,
        agent,
        team,
        mode,
    ) in rows:
        if not policy_version and decided_by != "policy":
            report.skipped += 1
            continue
        report.evaluated += 1
        before = original_decision(decision, decided_by)
        after = evaluate(
            Proposal(
                action_type=action_type,
                target=target,
                env=env,
                risk=risk,
                confidence=confidence if confidence is not None else 0.0,
                agent=agent,
                team=team,
                autonomy_mode=mode,
                rollback_plan=rollback_plan,
                parameters={radius_name: blast_radius},
            ),
            now=proposed_at,
        )
        if after.status == before:
            report.unchanged += 1
            continue
        counts[(before, after.status)] += 1
        report.changed += 1
        if len(report.rows) < row_limit:
            report.rows.append(
                DryRunRow(
                    action_id=action_id,
                    proposed_at=proposed_at,
                    agent=agent,
                    action_type=action_type,
                    target=target,
                    before=before,
                    after=after.status,
                    before_version=policy_version,
                    before_reasons=[],
                    after_reasons=after.reasons,
                )
            )
    _attach_reasons_then(report.rows)
    report.transitions = sorted(
        ((b, a, n) for (b, a), n in counts.items()), key=lambda t: (-t[2], t[0], t[1])
    )
    report.elapsed_ms = (time.perf_counter() - started) * 1000
    return report


def _number_parameter(name: str) -> Case:
    """parameters[name] as a float when it is a JSON number, else NULL: the engine's own rule
    (a string or a boolean is no blast radius), computed by PostgreSQL, so no JSON is decoded."""
    value = KeyTransform(name, "parameters")
    return Case(
        When(
            Exact(Func(value, function="jsonb_typeof", output_field=CharField()), "number"),
            then=Cast(KeyTextTransform(name, "parameters"), FloatField()),
        ),
        default=None,
        output_field=FloatField(),
    )


def _attach_reasons_then(rows: list[DryRunRow]) -> None:
    """The recorded reasons of the listed actions only (one query, not one per action)."""
    reasons = dict(
        Action.objects.filter(action_id__in=[r.action_id for r in rows]).values_list(
            "action_id", "decision_reasons"
        )
    )
    for row in rows:
        row.before_reasons.extend(reasons.get(row.action_id) or [])


def dry_run_window(days: int, *, now: datetime) -> tuple[datetime, datetime]:
    """The last `days` days up to `now`, with days clamped to 1..MAX_DAYS."""
    days = min(max(days, 1), MAX_DAYS)
    return now - timedelta(days=days), now
