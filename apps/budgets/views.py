"""Budget pages (FinOps and everyone who reads costs)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from apps.accounts.roles import FINOPS, SRE_LEAD
from apps.budgets.models import Budget
from apps.budgets.selectors import budget_crossings, budget_standing
from apps.core.views import role_required


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
