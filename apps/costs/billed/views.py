"""The reconciliation of estimated LLM cost with Anthropic's bill (FinOps), and the mapping of
Anthropic API key ids to agents."""

import csv
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.accounts.roles import FINOPS
from apps.core.exports import csv_safe
from apps.core.http import HtmxHttpRequest
from apps.core.views import role_required
from apps.costs.billed.client import NOT_CONFIGURED, admin_api_enabled
from apps.costs.billed.selectors import Reconciliation, pull_latest, reconciliation
from apps.costs.billed.services import PullNotConfigured, anthropic_costs_pull_request
from apps.costs.forms import ApiKeyMapForm, PullForm, ReconFilterForm


def _recon_form(request: HttpRequest) -> ReconFilterForm:
    today = timezone.now().date()
    data = {
        "since": request.GET.get("since") or (today - timedelta(days=13)).isoformat(),
        "until": request.GET.get("until") or today.isoformat(),
        **{k: request.GET.get(k, "") for k in ("workspace", "model", "agent", "tokens_only")},
    }
    return ReconFilterForm(data)


def _recon_context(request: HttpRequest, form: ReconFilterForm, **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "form": form,
        "enabled": admin_api_enabled(),
        "not_configured": NOT_CONFIGURED,
        "pull": pull_latest(),
        "threshold": settings.ANTHROPIC_RECON_VARIANCE_PCT,
        "pull_days": settings.ANTHROPIC_COST_PULL_DAYS,
        "recon": None,
        "agent_choices": [],
        **extra,
    }
    if form.is_valid():
        data = form.cleaned_data
        context["recon"] = reconciliation(
            since=data["since"],
            until=data["until"],
            workspace=data["workspace"],
            model=data["model"],
            agent=data["agent"],
            tokens_only=data["tokens_only"],
        )
        if context["recon"].unmapped_keys:
            from apps.fleet.models import Agent

            context["agent_choices"] = list(
                Agent.objects.order_by("slug").only("slug", "anthropic_api_key_id")
            )
    return context


@role_required(FINOPS)
def reconciliation_page(request: HtmxHttpRequest) -> HttpResponse:
    """Estimated (llm_call events) vs billed (Admin API) LLM cost; FinOps only."""
    if request.htmx and request.GET.get("part") == "pull":
        return render(request, "costs/partials/pull_status.html", {"pull": pull_latest()})
    form = _recon_form(request)
    if request.GET.get("format") == "csv":
        if not form.is_valid():
            return HttpResponse(
                " ".join(str(e) for errs in form.errors.values() for e in errs),
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        return _recon_csv(_recon_context(request, form)["recon"])
    context = _recon_context(request, form)
    return render(
        request, "costs/reconciliation.html", context, status=200 if form.is_valid() else 400
    )


def _recon_csv(recon: Reconciliation) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="llm-cost-reconciliation-{recon.since}-{recon.until}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(
        [
            "day",
            "workspace_id",
            "model",
            "api_key_id",
            "key_state",
            "agents",
            "estimated_usd",
            "usage_priced_usd",
            "billed_usd",
            "billed_non_token_usd",
            "variance_usd",
            "variance_pct",
            "llm_calls",
            "unpriced_calls",
        ]
    )
    for r in recon.rows:
        pct = r.variance_pct
        writer.writerow(
            [
                r.day.isoformat(),
                csv_safe(r.workspace_id),
                csv_safe(r.model),
                csv_safe(r.api_key_id),
                r.key_state,
                " ".join(r.agents),
                _plain(r.estimated),
                "" if r.usage_priced is None else _plain(r.usage_priced),
                _plain(r.billed),
                _plain(r.billed_non_token),
                _plain(r.variance),
                "" if pct is None else str(pct),
                r.calls,
                r.unpriced_calls,
            ]
        )
    return response


def _plain(value: Decimal) -> str:
    """Exact, without exponent or trailing zeros (0E-14 → 0)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


@require_POST
@role_required(FINOPS)
def reconciliation_pull(request: HttpRequest) -> HttpResponse:
    form = PullForm(request.POST)
    if not form.is_valid():
        problems = [str(e) for errs in form.errors.values() for e in errs]
        messages.error(request, "Nothing was pulled: " + " ".join(problems))
        return redirect("costs:reconciliation")
    since, last = form.cleaned_data["since"], form.cleaned_data["until"]
    try:
        anthropic_costs_pull_request(by=request.user, since=since, until=last + timedelta(days=1))
    except PullNotConfigured:
        messages.error(request, NOT_CONFIGURED)
        return redirect("costs:reconciliation")
    messages.success(
        request,
        f"Pulling billed cost for {since} to {last} (UTC); those days are replaced when it ends.",
    )
    return redirect(f"{reverse('costs:reconciliation')}?since={since}&until={last}")


@require_POST
@role_required(FINOPS)
def api_key_map(request: HttpRequest) -> HttpResponse:
    """Maps an API key id to an agent (or clears an agent's key); FinOps and admins."""
    from apps.fleet.models import Agent
    from apps.fleet.services import agent_anthropic_key_set

    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts=None):  # same-site paths only
        back = reverse("costs:reconciliation")
    form = ApiKeyMapForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an agent and give an API key id (apikey_…).")
        return redirect(back)
    agent = Agent.objects.filter(slug=form.cleaned_data["agent"]).first()
    if agent is None:
        messages.error(request, f"There is no agent {form.cleaned_data['agent']!r}.")
        return redirect(back)
    try:
        agent_anthropic_key_set(
            agent=agent, api_key_id=form.cleaned_data["api_key_id"], by=request.user.get_username()
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(back)
    if agent.anthropic_api_key_id:
        messages.success(
            request,
            f"Agent {agent.slug} now calls Claude with API key {agent.anthropic_api_key_id}.",
        )
    else:
        messages.success(request, f"Agent {agent.slug} has no Anthropic API key mapped now.")
    return redirect(back)
