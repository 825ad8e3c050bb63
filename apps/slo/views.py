"""The SRE lead's SLO pages: the tile list, one SLO, an agent's scorecard. Thin: selectors
build every figure and chart; views pick the template (full page or htmx fragment)."""

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render

from apps.accounts.roles import ADMIN, SRE_LEAD, VIEWER, has_role
from apps.core.http import HtmxHttpRequest
from apps.core.views import role_required
from apps.fleet.models import Agent
from apps.slo.models import Slo
from apps.slo.selectors import agent_scorecard, slo_get, slo_list_page, slo_page


@role_required(VIEWER)
def slo_list(request: HtmxHttpRequest) -> HttpResponse:
    """All SLOs as tiles, worst first; the filters swap only the tiles (and push the URL)."""
    context = slo_list_page(params=request.GET)
    context["can_edit"] = has_role(request.user, SRE_LEAD)
    template = "slo/partials/slo_tiles.html" if request.htmx else "slo/slo_list.html"
    return render(request, template, context)


@role_required(VIEWER)
def slo_detail(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    try:
        slo = slo_get(slug)
    except Slo.DoesNotExist as exc:
        raise Http404(f"No SLO named {slug!r}.") from exc
    context = slo_page(slo=slo)
    context["can_edit"] = has_role(request.user, SRE_LEAD)
    return render(request, "slo/slo_detail.html", context)


@role_required(VIEWER)
def agent_slo_scorecard(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    agent = get_object_or_404(Agent.objects.select_related("team"), slug=slug)
    context = {
        "card": agent_scorecard(agent=agent),
        "agent": agent,
        "can_admin": has_role(request.user, ADMIN),
    }
    return render(request, "slo/agent_scorecard.html", context)
