"""Budget pages (FinOps and everyone who reads costs)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from apps.accounts.roles import FINOPS, SRE_LEAD, has_role
from apps.budgets.models import Budget
from apps.budgets.selectors import budget_crossings, budget_standing
from apps.budgets.services import agents_halt, agents_resume
from apps.core.views import role_required
from apps.fleet.models import Agent, Team


@role_required(FINOPS, SRE_LEAD)
def budget_list(request: HttpRequest) -> HttpResponse:
    budgets = Budget.objects.select_related("team", "agent").prefetch_related("thresholds")
    standings = [budget_standing(b) for b in budgets]
    return render(request, "budgets/budget_list.html", {"standings": standings})


@role_required(FINOPS, SRE_LEAD)
def budget_detail(request: HttpRequest, slug: str) -> HttpResponse:
    budget = get_object_or_404(
        Budget.objects.select_related("team", "agent").prefetch_related("thresholds"), slug=slug
    )
    return render(
        request,
        "budgets/budget_detail.html",
        {"standing": budget_standing(budget), "crossings": budget_crossings(budget)},
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
