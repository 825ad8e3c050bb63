from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.roles import ADMIN
from apps.core.views import role_required
from apps.fleet.forms import AgentTokenForm
from apps.fleet.models import Agent, AgentToken
from apps.fleet.selectors import agent_tokens
from apps.fleet.services import agent_token_mint, agent_token_revoke


@role_required(ADMIN)
def agent_list(request: HttpRequest) -> HttpResponse:
    agents = Agent.objects.select_related("team").order_by("team__slug", "slug")
    return render(request, "fleet/agent_list.html", {"agents": agents})


@role_required(ADMIN)
def agent_detail(request: HttpRequest, slug: str) -> HttpResponse:
    agent = get_object_or_404(Agent.objects.select_related("team"), slug=slug)
    new_token = None
    if request.method == "POST":
        form = AgentTokenForm(request.POST)
        if form.is_valid():
            _, new_token = agent_token_mint(
                agent=agent,
                scopes=form.cleaned_data["scopes"],
                ttl=form.cleaned_data["ttl"],
                created_by=request.user.username,
                name=form.cleaned_data["name"],
            )
            form = AgentTokenForm()
    else:
        form = AgentTokenForm()
    return render(
        request,
        "fleet/agent_detail.html",
        {"agent": agent, "tokens": agent_tokens(agent), "form": form, "new_token": new_token},
    )


@require_POST
@role_required(ADMIN)
def agent_token_revoke_view(request: HttpRequest, slug: str, token_id: int) -> HttpResponse:
    token = get_object_or_404(AgentToken, pk=token_id, agent__slug=slug)
    agent_token_revoke(token=token, revoked_by=request.user.username)
    messages.success(request, f"Token {token.prefix}… revoked; it is refused from now on.")
    return redirect("fleet:agent", slug=slug)
