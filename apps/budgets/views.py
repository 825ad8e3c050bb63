"""Budget pages (FinOps and everyone who reads costs)."""

from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.roles import FINOPS, SRE_LEAD, has_role
from apps.budgets.api_budgets import BUDGET_FIELDS, BudgetIn
from apps.budgets.models import (
    Budget,
    BudgetMeasure,
    BudgetPeriod,
    BudgetScope,
    ThresholdAction,
)
from apps.budgets.selectors import (
    budget_changes,
    budget_chart,
    budget_crossings,
    budget_forecast,
    budget_reserved,
    budget_standing,
)
from apps.budgets.services import (
    agents_halt,
    agents_in_scope,
    agents_resume,
    budget_resume,
    budget_save,
    default_thresholds,
)
from apps.core.views import role_required
from apps.fleet.models import Agent, Team


@role_required(FINOPS, SRE_LEAD)
def budget_list(request: HttpRequest) -> HttpResponse:
    budgets = Budget.objects.select_related("team", "agent").prefetch_related("thresholds")
    standings = [budget_standing(b) for b in budgets]
    return render(
        request,
        "budgets/budget_list.html",
        {"standings": standings, "can_edit": has_role(request.user, FINOPS)},
    )


@role_required(FINOPS, SRE_LEAD)
def budget_detail(request: HttpRequest, slug: str) -> HttpResponse:
    budget = get_object_or_404(
        Budget.objects.select_related("team", "agent").prefetch_related("thresholds"), slug=slug
    )
    standing = budget_standing(budget)
    forecast = budget_forecast(standing)
    agents = agents_in_scope(budget)
    return render(
        request,
        "budgets/budget_detail.html",
        {
            "standing": standing,
            "forecast": forecast,
            "chart": budget_chart(standing, forecast),
            "crossings": budget_crossings(budget),
            "changes": budget_changes(budget),
            "reserved": budget_reserved(budget),
            "agents": agents,
            "halted_here": [a for a in agents if a.halted],
            "can_edit": has_role(request.user, FINOPS),
        },
    )


@role_required(FINOPS, SRE_LEAD)
@require_http_methods(["GET", "POST"])
def halted_agents(request: HttpRequest) -> HttpResponse:
    """Who is halted and why; resume (with a reason); the emergency stop."""
    error = ""
    if request.method == "POST":
        if not has_role(request.user, FINOPS):
            raise PermissionDenied("Halting and resuming agents needs the finops or admin role.")
        op = request.POST.get("op", "")
        reason = request.POST.get("reason", "").strip()[:2000]
        if not reason:
            error = "Nothing changed: a reason is required."
        elif op == "resume":
            agent = get_object_or_404(
                Agent.objects.select_related("team"), slug=request.POST.get("agent", "")
            )
            agents_resume(agents=[agent], reason=reason, by=request.user)
            messages.success(request, f"{agent.slug} resumed.")
            return redirect("budgets:halted")
        elif op == "stop":
            target = request.POST.get("target", "")
            agents = _stop_targets(target)
            if agents is None:
                error = "Nothing changed: choose an agent, a team or everything."
            else:
                stopped = agents_halt(agents=agents, reason=reason, by=request.user)
                messages.success(
                    request,
                    f"Halted {len(stopped)} agent{'s' if len(stopped) != 1 else ''}"
                    + (
                        f": {', '.join(a.slug for a in stopped)}."
                        if stopped
                        else " (all were halted already)."
                    ),
                )
                return redirect("budgets:halted")
        else:
            error = "Unknown operation."
    context = {
        "halted": Agent.objects.filter(halted=True).select_related("team").order_by("-halted_at"),
        "agents": Agent.objects.filter(halted=False).order_by("slug"),
        "teams": Team.objects.order_by("slug"),
        "can_act": has_role(request.user, FINOPS),
        "error": error,
    }
    return render(request, "budgets/halted.html", context, status=400 if error else 200)


def _stop_targets(target: str) -> list[Agent] | None:
    """`agent:<slug>`, `team:<slug>` or `all`."""
    qs = Agent.objects.select_related("team").order_by("slug")
    if target == "all":
        return list(qs)
    kind, _, slug = target.partition(":")
    if kind == "agent" and qs.filter(slug=slug).exists():
        return list(qs.filter(slug=slug))
    if kind == "team" and Team.objects.filter(slug=slug).exists():
        return list(qs.filter(team__slug=slug))
    return None


THRESHOLD_ROWS = 6


def _form_data(request: HttpRequest) -> dict[str, Any]:
    """The form's fields in the API's shape: one validation for both."""
    post = request.POST
    data: dict[str, Any] = {
        name: post.get(name, "").strip() for name in BUDGET_FIELDS if name != "active"
    }
    for name in ("team", "agent", "rolling_days"):
        data[name] = data[name] or None
    data["currency"] = data["currency"] or "USD"
    data["active"] = post.get("active") == "on"
    thresholds = []
    for i in range(THRESHOLD_ROWS):
        percent = post.get(f"t{i}_percent", "").strip()
        action = post.get(f"t{i}_action", "").strip()
        if percent or action:
            row: dict[str, Any] = {"percent": percent, "action": action}
            per_minute = post.get(f"t{i}_per_minute", "").strip()
            if per_minute:
                row["per_minute"] = per_minute
            thresholds.append(row)
    data["thresholds"] = thresholds
    return data


def _initial(budget: Budget | None) -> dict[str, Any]:
    if budget is None:
        rows = [
            _threshold_row(t["percent"], t["action"], t["per_minute"]) for t in default_thresholds()
        ]
        values: dict[str, Any] = {
            "time_zone": "UTC",
            "currency": "USD",
            "active": True,
            "period": "monthly",
            "measure": "llm_usd",
            "scope": "global",
        }
    else:
        rows = [_threshold_row(t.percent, t.action, t.per_minute) for t in budget.thresholds.all()]
        values = {
            "slug": budget.slug,
            "name": budget.name,
            "scope": budget.scope,
            "team": budget.team.slug if budget.team else "",
            "agent": budget.agent.slug if budget.agent else "",
            "model_pattern": budget.model_pattern,
            "measure": budget.measure,
            "currency": budget.currency,
            "period": budget.period,
            "rolling_days": budget.rolling_days or "",
            "time_zone": budget.time_zone,
            "cap": f"{budget.cap.normalize():f}",
            "active": budget.active,
        }
    values["thresholds"] = _padded(rows)
    return values


def _form_page(
    request: HttpRequest,
    budget: Budget | None,
    values: dict[str, Any],
    errors: dict[str, Any],
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "budgets/budget_form.html",
        {
            "budget": budget,
            "values": values,
            "errors": errors,
            "scopes": BudgetScope.choices,
            "measures": BudgetMeasure.choices,
            "periods": BudgetPeriod.choices,
            "actions": ThresholdAction.choices,
            "teams": Team.objects.order_by("slug"),
            "agents": Agent.objects.order_by("slug"),
        },
        status=status,
    )


def _threshold_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    return _padded(
        [
            _threshold_row(t.get("percent", ""), t.get("action", ""), t.get("per_minute"))
            for t in data["thresholds"]
        ]
    )


def _threshold_row(percent: Any = "", action: str = "", per_minute: Any = None) -> dict[str, Any]:
    """One row of the form's threshold table as the template shows it (a percent as typed, or
    a stored one without trailing zeros)."""
    shown = f"{percent.normalize():f}" if isinstance(percent, Decimal) else percent
    return {"percent": shown, "action": action, "per_minute": per_minute or ""}


def _padded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows, and empty ones up to the form's THRESHOLD_ROWS."""
    return rows + [_threshold_row() for _ in range(THRESHOLD_ROWS - len(rows))]


@role_required(FINOPS)
@require_http_methods(["GET", "POST"])
def budget_edit(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    budget = (
        get_object_or_404(
            Budget.objects.select_related("team", "agent").prefetch_related("thresholds"), slug=slug
        )
        if slug
        else None
    )
    if request.method == "GET":
        return _form_page(request, budget, _initial(budget), {})
    data = _form_data(request)
    if budget is not None:
        data["slug"] = budget.slug
    incoming = BudgetIn(data=data)
    if not incoming.is_valid():
        values = {**data, "thresholds": _threshold_rows(data)}
        return _form_page(request, budget, values, incoming.errors, status=400)
    try:
        saved = budget_save(budget, dict(incoming.validated_data), request.user)
    except ValidationError as exc:
        values = {**data, "thresholds": _threshold_rows(data)}
        return _form_page(request, budget, values, exc.message_dict, status=400)
    messages.success(request, f"Saved budget {saved.name}.")
    return redirect("budgets:detail", slug=saved.slug)


@role_required(FINOPS)
@require_POST
def budget_resume_view(request: HttpRequest, slug: str) -> HttpResponse:
    """Resume what the budget halted, with a reason and, usually, more room."""
    budget = get_object_or_404(Budget, slug=slug)
    reason = request.POST.get("reason", "").strip()[:2000]
    problems = []
    cap = allowance = None
    try:
        cap = _amount(request.POST.get("cap", ""))
        allowance = _amount(request.POST.get("allowance", ""))
    except ValueError as exc:
        problems.append(str(exc))
    if not reason:
        problems.append("a reason is required")
    if cap is not None and cap <= 0:
        problems.append("a cap is above 0")
    if problems:
        messages.error(request, "Nothing changed: " + "; ".join(problems) + ".")
        return redirect("budgets:detail", slug=slug)
    resumed = budget_resume(
        budget=budget, reason=reason, by=request.user, cap=cap, allowance=allowance
    )
    room = (
        f"cap now {cap.normalize():f}"
        if cap is not None
        else f"{allowance.normalize():f} more this period"
        if allowance
        else "no more room: the next counted event halts them again"
    )
    names = ", ".join(a.slug for a in resumed) or "no agent was halted"
    messages.success(request, f"Resumed ({names}); {room}.")
    return redirect("budgets:detail", slug=slug)


def _amount(text: str) -> Decimal | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount (a dot for decimals)") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{text!r} is not an amount of 0 or more")
    return value
