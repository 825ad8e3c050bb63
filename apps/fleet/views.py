from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.roles import ADMIN
from apps.core.views import role_required
from apps.fleet.forms import AgentForm, AgentTokenForm, TeamForm
from apps.fleet.models import Agent, AgentToken, Team
from apps.fleet.selectors import agent_tokens
from apps.fleet.services import agent_create, agent_token_mint, agent_token_revoke, team_create

T = TypeVar("T")


@role_required(ADMIN)
def agent_list(request: HttpRequest) -> HttpResponse:
    """Agents and teams, with a form to create each; the POST's `create` says which."""
    kind = request.POST.get("create") if request.method == "POST" else None
    team_form = TeamForm(request.POST if kind == "team" else None, prefix="team")
    agent_form = AgentForm(request.POST if kind == "agent" else None, prefix="agent")
    if kind == "team" and team_form.is_valid():
        team = _create(team_form, lambda data: team_create(**data))
        if team is not None:
            messages.success(request, f"Team {team.slug} created.")
            return redirect("fleet:agents")
    elif kind == "agent" and agent_form.is_valid():
        agent = _create(
            agent_form,
            lambda data: agent_create(
                slug=data["slug"],
                team=data["team"],
                mode=data["autonomy_mode"],
                environment=data["environment"],
            ),
        )
        if agent is not None:
            messages.success(request, f"Agent {agent.slug} created; mint it a token below.")
            return redirect("fleet:agent", slug=agent.slug)
    return render(
        request,
        "fleet/agent_list.html",
        {
            "agents": Agent.objects.select_related("team").order_by("team__slug", "slug"),
            "teams": Team.objects.annotate(agent_count=Count("agents")).order_by("slug"),
            "team_form": team_form,
            "agent_form": agent_form,
        },
    )


def _create(form: forms.Form, create: Callable[[dict[str, Any]], T]) -> T | None:
    """Runs a create service; its validation errors (a taken slug) land on the form."""
    try:
        return create(form.cleaned_data)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return None


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
