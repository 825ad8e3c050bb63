"""A budget's definition before and after a person's change, kept as a ChangeRecord (who, when,
each field's old → new), shown in the budget's history."""

from datetime import datetime
from typing import Any

from apps.audit.models import ChangeRecord
from apps.audit.services.changes import change_record
from apps.budgets.models import Budget, BudgetThreshold

SUBJECT = "budget"
# The fields a change record compares, in the order the history lists them.
LABELS = {
    "name": "name",
    "scope": "scope",
    "team": "team",
    "agent": "agent",
    "model_pattern": "model pattern",
    "measure": "measure",
    "currency": "currency",
    "period": "period",
    "rolling_days": "rolling days",
    "time_zone": "time zone",
    "cap": "cap",
    "thresholds": "thresholds",
    "active": "active",
}


def threshold_label(percent: Any, action: str, per_minute: int | None) -> str:
    rate = f" {per_minute}/min" if action == "throttle" and per_minute else ""
    return f"{percent.normalize():f} % {action}{rate}"


def budget_state(pk: int, *, lock: bool = False) -> dict[str, Any]:
    """The budget's definition as committed in this transaction, as JSON values; `lock` holds
    its row until the transaction ends, so a concurrent edit's record starts from this one's
    result."""
    budgets = Budget.objects.select_related("team", "agent")
    if lock:
        budgets = budgets.select_for_update(of=("self",))
    budget = budgets.get(pk=pk)
    thresholds = BudgetThreshold.objects.filter(budget_id=pk).order_by("percent", "action")
    return {
        "name": budget.name,
        "scope": budget.scope,
        "team": budget.team.slug if budget.team else None,
        "agent": budget.agent.slug if budget.agent else None,
        "model_pattern": budget.model_pattern or None,
        "measure": budget.measure,
        "currency": budget.currency,
        "period": budget.period,
        "rolling_days": budget.rolling_days,
        "time_zone": budget.time_zone,
        "cap": f"{budget.cap.normalize():f}",
        "thresholds": [
            threshold_label(t.percent, t.action, t.per_minute) for t in thresholds.iterator()
        ],
        "active": budget.active,
    }


def budget_before(budget: Budget | None) -> dict[str, Any] | None:
    """The stored definition of a budget about to change (None for a new one), its row
    locked. Call first in the transaction that saves it."""
    if budget is None or budget.pk is None:
        return None
    return budget_state(budget.pk, lock=True)


def budget_change_record(
    budget: Budget, before: dict[str, Any] | None, by: Any, at: datetime | None = None
) -> ChangeRecord | None:
    """Records what changed since `before` (None: the budget was created), by whom; nothing
    when a save changed nothing. Call last in the transaction that saved it."""
    after = budget_state(budget.pk)
    if before is None:
        op = "created"
        changes = {f: [None, v] for f, v in after.items() if v not in (None, "", [])}
    else:
        changes = {f: [before.get(f), v] for f, v in after.items() if before.get(f) != v}
        if not changes:
            return None
        if "active" in changes:
            op = "reactivated" if after["active"] else "deactivated"
        else:
            op = "changed"
    return change_record(
        subject_type=SUBJECT,
        subject_id=budget.pk,
        subject=budget.slug,
        op=op,
        by=by,
        changes=changes,
        at=at,
    )


def _shown(value: Any) -> str:
    if value is None or value == []:
        return "none"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def change_lines(record: ChangeRecord) -> list[str]:
    """One line per field: `cap 10 → 20`, or for a new budget `cap 10`."""
    lines = []
    for field, label in LABELS.items():
        if field not in record.changes:
            continue
        old, new = record.changes[field]
        if record.op == "created":
            lines.append(f"{label} {_shown(new)}")
        else:
            lines.append(f"{label} {_shown(old)} → {_shown(new)}")
    return lines
