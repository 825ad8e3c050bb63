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
from apps.fleet.forms import AgentForm, AgentTokenForm, CallbackForm, TeamForm
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
    return _agent_detail_render(request, agent, form=form, new_token=new_token)


def _agent_detail_render(
    request: HttpRequest, agent: Agent, status: int = 200, **extra: Any
) -> HttpResponse:
    from apps.notifications.selectors import callback_deliveries_recent

    context = {
        "agent": agent,
        "tokens": agent_tokens(agent),
        "form": AgentTokenForm(),
        "callback_form": CallbackForm(initial={"url": agent.callback_url}),
        "deliveries": callback_deliveries_recent(agent=agent),
        **extra,
    }
    return render(request, "fleet/agent_detail.html", context, status=status)


@require_POST
@role_required(ADMIN)
def agent_callback(request: HttpRequest, slug: str) -> HttpResponse:
    """Sets, clears, or gives a new secret to the agent's decision callback."""
    from apps.actions.callbacks import (
        agent_callback_clear,
        agent_callback_secret_rotate,
        agent_callback_set,
    )

    agent = get_object_or_404(Agent.objects.select_related("team"), slug=slug)
    op = request.POST.get("op", "")
    if op == "clear":
        agent_callback_clear(agent=agent)
        messages.success(request, "Callback removed; pending retries stop at their next attempt.")
        return redirect("fleet:agent", slug=slug)
    if op == "rotate":
        if not agent.callback_url:
            messages.error(request, "Set a callback URL first; the secret comes with it.")
            return redirect("fleet:agent", slug=slug)
        secret = agent_callback_secret_rotate(agent=agent)
        return _agent_detail_render(request, agent, new_callback_secret=secret)
    if op != "set":
        messages.error(request, "Unknown callback operation.")
        return redirect("fleet:agent", slug=slug)
    form = CallbackForm(request.POST)
    if not form.is_valid():
        return _agent_detail_render(request, agent, callback_form=form, status=400)
    first_secret = agent_callback_set(agent=agent, url=form.cleaned_data["url"])
    messages.success(request, f"Callback URL set to {agent.callback_url}.")
    if first_secret is None:
        return redirect("fleet:agent", slug=slug)
    return _agent_detail_render(request, agent, new_callback_secret=first_secret)


@require_POST
@role_required(ADMIN)
def agent_token_revoke_view(request: HttpRequest, slug: str, token_id: int) -> HttpResponse:
    token = get_object_or_404(AgentToken, pk=token_id, agent__slug=slug)
    agent_token_revoke(token=token, revoked_by=request.user.username)
    messages.success(request, f"Token {token.prefix}… revoked; it is refused from now on.")
    return redirect("fleet:agent", slug=slug)
