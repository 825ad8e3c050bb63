"""Allocation rules: checking, saving and reordering them, and recomputing allocations after.

The API and the rules page both call `rule_clean`, so they refuse the same things with the
same messages. Every change queues a recompute of the recent months (`RECOMPUTE_MONTHS`);
any other range can be recomputed from the rules page.
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.billing.models import (
    AllocationRule,
    AllocationRun,
    ImportStatus,
    RuleKind,
    RuleTarget,
    SplitBasis,
)
from apps.fleet.models import Agent, Team

logger = logging.getLogger(__name__)
# The current month and the two before it are recomputed when a rule changes.
RECOMPUTE_MONTHS = 3
TEXT_LIMITS = {
    "name": 200,
    "tag_key": 256,
    "match_provider": 128,
    "match_service": 256,
    "match_tag_key": 256,
    "match_tag_value": 256,
    "match_resource": 500,
}
VALUE_MAP_MAX = 500
SHARED_FIELDS = (
    "match_provider",
    "match_service",
    "match_tag_key",
    "match_tag_value",
    "match_resource",
)
RULE_FIELDS = (
    "name",
    "kind",
    "enabled",
    "tag_key",
    "target",
    "value_map",
    *SHARED_FIELDS,
    "split",
    "teams",
)


@dataclass
class RuleInvalid(Exception):
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


def _known(slugs: set[str], kind: str, known: list[str]) -> str:
    shown = ", ".join(known[:12]) + (" …" if len(known) > 12 else "")
    names = ", ".join(f"'{s}'" for s in sorted(slugs))
    return f"No {kind} has the slug {names}; known {kind}s: {shown or '(none)'}."


def rule_clean(data: dict[str, Any], *, instance: AllocationRule | None = None) -> dict[str, Any]:
    """The rule's fields, checked and tidied; raises RuleInvalid naming each bad field."""
    invalid = RuleInvalid()
    clean: dict[str, Any] = {}
    for name, limit in TEXT_LIMITS.items():
        value = data.get(name, "")
        value = "" if value is None else value
        if not isinstance(value, str):
            invalid.add(name, "Send text.")
            value = ""
        value = value.strip()
        if len(value) > limit:
            invalid.add(name, f"At most {limit} characters (this is {len(value)}).")
        clean[name] = value
    if "name" in invalid.errors:
        pass
    elif not clean["name"]:
        invalid.add(
            "name", "Give the rule a name: the chargeback names the rule behind each number."
        )
    elif (
        AllocationRule.objects.filter(name__iexact=clean["name"])
        .exclude(pk=instance.pk if instance else 0)
        .exists()
    ):
        invalid.add("name", f"A rule named '{clean['name']}' exists; names must differ.")
    kind = data.get("kind")
    if kind not in RuleKind.values:
        invalid.add("kind", f"Choose one of: {', '.join(RuleKind.values)}.")
    clean["kind"] = kind
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        invalid.add("enabled", "Send true or false.")
    clean["enabled"] = bool(enabled)
    clean["target"], clean["value_map"], clean["split"], clean["teams"] = "", {}, "", []
    if kind == RuleKind.TAG:
        _clean_tag(data, clean, invalid)
    elif kind == RuleKind.SHARED:
        _clean_shared(data, clean, invalid)
    if invalid.errors:
        raise invalid
    return clean


def _clean_tag(data: dict[str, Any], clean: dict[str, Any], invalid: RuleInvalid) -> None:
    for name in SHARED_FIELDS:
        clean[name] = ""
    if not clean["tag_key"]:
        invalid.add("tag_key", "Name the tag to read, e.g. opsdash-agent or team.")
    target = data.get("target")
    if target not in RuleTarget.values:
        invalid.add("target", f"Choose one of: {', '.join(RuleTarget.values)}.")
        return
    clean["target"] = target
    value_map = data.get("value_map") or {}
    if not isinstance(value_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value_map.items()
    ):
        invalid.add("value_map", "Send an object of tag value → slug, both text.")
        return
    if len(value_map) > VALUE_MAP_MAX:
        invalid.add("value_map", f"At most {VALUE_MAP_MAX} entries.")
        return
    value_map = {k.strip(): v.strip().lower() for k, v in value_map.items() if k.strip()}
    model = Agent if target == RuleTarget.AGENT else Team
    known = list(model.objects.order_by("slug").values_list("slug", flat=True))
    unknown = set(value_map.values()) - set(known)
    if unknown:
        invalid.add("value_map", _known(unknown, target, known))
    clean["value_map"] = value_map


def _clean_shared(data: dict[str, Any], clean: dict[str, Any], invalid: RuleInvalid) -> None:
    clean["tag_key"] = ""
    if not any(clean[name] for name in SHARED_FIELDS):
        invalid.add(
            "match_service",
            "Give at least one condition (provider, service, tag or resource): a shared rule "
            "that matches everything would leave nothing for the rules after it.",
        )
    if clean["match_tag_value"] and not clean["match_tag_key"]:
        invalid.add("match_tag_key", "Name the tag whose value must match.")
    if clean["match_resource"]:
        try:
            re.compile(clean["match_resource"])
        except re.error as exc:
            invalid.add("match_resource", f"Not a valid regular expression: {exc}.")
    split = data.get("split") or SplitBasis.EVEN
    if split not in SplitBasis.values:
        invalid.add("split", f"Choose one of: {', '.join(SplitBasis.values)}.")
    clean["split"] = split
    teams = data.get("teams") or []
    if not isinstance(teams, list) or not all(isinstance(t, str) for t in teams):
        invalid.add("teams", "Send a list of team slugs (empty: every team).")
        return
    slugs = sorted({t.strip().lower() for t in teams if t.strip()})
    known = list(Team.objects.order_by("slug").values_list("slug", flat=True))
    unknown = set(slugs) - set(known)
    if unknown:
        invalid.add("teams", _known(unknown, "team", known))
    clean["teams"] = slugs


def _save(rule: AllocationRule, clean: dict[str, Any], user: Any) -> AllocationRule:
    for name, value in clean.items():
        if name != "teams":
            setattr(rule, name, value)
    rule.updated_by = user if getattr(user, "pk", None) else None
    rule.updated_at = timezone.now()
    rule.save()
    rule.teams.set(Team.objects.filter(slug__in=clean["teams"]))
    return rule


@transaction.atomic
def rule_create(*, data: dict[str, Any], user: Any, recompute: bool = True) -> AllocationRule:
    """`recompute=False`: nothing is allocated yet (the demo seed, before its bill)."""
    clean = rule_clean(data)
    last = AllocationRule.objects.aggregate(m=Max("position"))["m"]
    rule = _save(AllocationRule(position=0 if last is None else last + 1), clean, user)
    if recompute:
        allocation_recompute_request(reason=f"rule '{rule.name}' added", user=user)
    return rule


@transaction.atomic
def rule_update(*, rule: AllocationRule, data: dict[str, Any], user: Any) -> AllocationRule:
    clean = rule_clean(data, instance=rule)
    _save(rule, clean, user)
    allocation_recompute_request(reason=f"rule '{rule.name}' changed", user=user)
    return rule


@transaction.atomic
def rule_delete(*, rule: AllocationRule, user: Any) -> None:
    name = rule.name
    rule.delete()
    allocation_recompute_request(reason=f"rule '{name}' deleted", user=user)


@transaction.atomic
def rule_move(*, rule: AllocationRule, up: bool, user: Any) -> None:
    """Swaps the rule with its neighbour."""
    rule_place(rule=rule, position=rule_index(rule) + (-1 if up else 1), user=user)


def rule_index(rule: AllocationRule) -> int:
    ordered = list(AllocationRule.objects.order_by("position", "id").values_list("pk", flat=True))
    return ordered.index(rule.pk)


@transaction.atomic
def rule_place(*, rule: AllocationRule, position: int, user: Any) -> None:
    """Puts the rule at `position` (0 is tried first; clamped to the list); the positions are
    renumbered 0..n-1."""
    ordered = list(AllocationRule.objects.select_for_update().order_by("position", "id"))
    index = next(i for i, r in enumerate(ordered) if r.pk == rule.pk)
    position = max(0, min(position, len(ordered) - 1))
    if position == index:
        return
    ordered.insert(position, ordered.pop(index))
    for n, item in enumerate(ordered):
        if item.position != n:
            AllocationRule.objects.filter(pk=item.pk).update(position=n)
    rule.position = position
    allocation_recompute_request(reason=f"rule '{rule.name}' moved to #{position + 1}", user=user)


def rule_data(rule: AllocationRule) -> dict[str, Any]:
    """The rule's editable fields, as rule_clean takes them."""
    data: dict[str, Any] = {name: getattr(rule, name) for name in RULE_FIELDS if name != "teams"}
    data["teams"] = sorted(t.slug for t in rule.teams.all()) if rule.pk else []
    return data


def default_range(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The current month and the RECOMPUTE_MONTHS - 1 before it."""
    now = (now or timezone.now()).astimezone(UTC)
    month = now.year * 12 + now.month - 1 - (RECOMPUTE_MONTHS - 1)
    start = datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC)
    after = now.year * 12 + now.month
    end = datetime(after // 12, after % 12 + 1, 1, tzinfo=UTC)
    return start, end


def allocation_recompute_request(
    *,
    reason: str,
    user: Any = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> AllocationRun:
    """Records a recompute and queues it after commit (the rules it reads must be saved)."""
    from apps.billing.tasks import allocation_run_task

    if start is None or end is None:
        start, end = default_range()
    run = AllocationRun.objects.create(
        start=start,
        end=end,
        reason=reason[:300],
        requested_by=user if getattr(user, "pk", None) else None,
    )
    run_id = run.pk
    transaction.on_commit(lambda: allocation_run_task.delay(run_id), robust=True)
    return run


def allocation_run_process(*, run_id: int) -> AllocationRun | None:
    """The task's body: claims the run and recomputes its range in one transaction, so a run
    delivered twice, or run again, gives the same allocations."""
    from apps.billing.allocation import allocate_range
    from apps.budgets.services import budgets_cloud_recount

    claimed = AllocationRun.objects.filter(pk=run_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    run = AllocationRun.objects.get(pk=run_id)
    try:
        with transaction.atomic():
            count = allocate_range(run.start, run.end)
            budgets_cloud_recount()
    except Exception as exc:
        logger.exception("allocation run %s failed", run_id)
        run.status = ImportStatus.FAILED
        run.error_message = f"The recompute stopped on {type(exc).__name__}; nothing changed."
    else:
        run.status = ImportStatus.DONE
        run.line_items, run.allocations = count.line_items, count.allocations
    run.finished_at = timezone.now()
    run.save()
    return run


def rules_with_change(
    clean: dict[str, Any], *, instance: AllocationRule | None = None
) -> list[AllocationRule]:
    """The rule list as it would be after saving `clean` (unsaved objects; for a preview)."""
    rules = list(AllocationRule.objects.prefetch_related("teams").order_by("position", "id"))
    for rule in rules:
        rule.preview_team_slugs = [t.slug for t in rule.teams.all()]  # type: ignore[attr-defined]
    changed = AllocationRule(**{k: v for k, v in clean.items() if k != "teams"})
    changed.preview_team_slugs = clean["teams"]  # type: ignore[attr-defined]
    if instance is None:
        return [*rules, changed]
    return [changed if r.pk == instance.pk else r for r in rules]
