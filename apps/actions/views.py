import hashlib
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from apps.accounts.roles import APPROVER, VIEWER, has_role
from apps.actions.decide import DecisionOutcome, DecisionRefused, action_decide
from apps.actions.forms import DecisionForm, VerdictForm, form_errors_text
from apps.actions.models import Action
from apps.actions.selectors import action_get, action_page, action_provenance, pending_queue
from apps.actions.verdict import VerdictRefused, action_verdict_record
from apps.core.http import HtmxHttpRequest
from apps.core.views import role_required

ORDINALS = {2: "second", 3: "third", 4: "fourth", 5: "fifth"}


@role_required(VIEWER)
def action_list(request: HtmxHttpRequest) -> HttpResponse:
    context = action_page(params=request.GET, user=request.user)
    template = "actions/partials/action_table.html" if request.htmx else "actions/action_list.html"
    return render(request, template, context)


@role_required(VIEWER)
def action_queue(request: HtmxHttpRequest) -> HttpResponse:
    """The inbox. Its list polls this view with the fingerprint of what it shows: an
    unchanged list answers 204, so htmx swaps nothing (no flicker, no lost selection)."""
    context = pending_queue(params=request.GET, user=request.user)
    context["can_decide"] = has_role(request.user, APPROVER)
    rows_html = render_to_string("actions/partials/queue_rows.html", context, request)
    fingerprint = hashlib.sha256(rows_html.encode()).hexdigest()[:16]
    if request.htmx and request.GET.get("fp") == fingerprint:
        return HttpResponse(status=204)
    context.update(rows_html=rows_html, fingerprint=fingerprint, oob=bool(request.htmx))
    template = "actions/partials/queue_list.html" if request.htmx else "actions/queue.html"
    return render(request, template, context)


def _provenance_context(request: HtmxHttpRequest, action_id: str) -> dict[str, Any]:
    try:
        action = action_get(action_id=action_id, user=request.user)
    except Action.DoesNotExist as exc:
        raise Http404("No such action.") from exc
    context = action_provenance(action=action, user=request.user)
    context["can_decide"] = has_role(request.user, APPROVER)
    return context


@role_required(VIEWER)
def action_detail(request: HtmxHttpRequest, action_id: str) -> HttpResponse:
    """The decision provenance: a full page, or the queue's right pane for htmx."""
    context = _provenance_context(request, action_id)
    template = "actions/partials/provenance.html" if request.htmx else "actions/action_detail.html"
    return render(request, template, context)


def decision_message(outcome: DecisionOutcome, reason: str) -> str:
    action, votes, required = outcome.action, outcome.votes, outcome.required
    if action.status == "rejected":
        return f"Rejected. The agent is told, with your reason: “{reason}”."
    if outcome.final:
        if required > 1:
            return f"{votes} of {required} approvals — approved. The agent may run it now."
        return "Approved. The agent may run it now."
    if action.separation_of_duties and required > max(action.approvers_required, 1):
        return (
            f"{votes} of {required} approvals — separation of duties: the agent's owners cannot "
            "be its only approvers; waiting for an approver from outside its owners."
        )
    nth = ORDINALS.get(votes + 1, f"{votes + 1}th")
    return f"{votes} of {required} approvals — waiting for a {nth} approver."


def _answer(
    request: HtmxHttpRequest, action_id: str, *, level: str, text: str, status: int
) -> HttpResponse:
    """The pane with the outcome on top for htmx; a redirect (or the page with the error)
    otherwise. Tells the queue's list to refresh itself at once."""
    if not request.htmx and status == 200:
        messages.add_message(request, messages.SUCCESS if level == "ok" else messages.INFO, text)
        return redirect("actions:detail", action_id=action_id)
    context = _provenance_context(request, action_id)
    context["outcome"] = {"level": level, "text": text}
    template = "actions/partials/provenance.html" if request.htmx else "actions/action_detail.html"
    response = render(request, template, context, status=status)
    response["HX-Trigger"] = "queue-changed"
    return response


@require_POST
@role_required(APPROVER)
def action_decide_view(request: HtmxHttpRequest, action_id: str) -> HttpResponse:
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _answer(request, action_id, level="error", text=form_errors_text(form), status=400)
    reason = form.cleaned_data["reason"]
    try:
        outcome = action_decide(
            action_id=action_id,
            user=request.user,
            approve=form.cleaned_data["decision"] == "approve",
            reason=reason,
            comment=form.cleaned_data["comment"],
        )
    except DecisionRefused as exc:
        status = 404 if str(exc).startswith("No action") else 409
        if status == 404:
            raise Http404(str(exc)) from exc
        return _answer(request, action_id, level="error", text=str(exc), status=status)
    level = "ok" if outcome.final and outcome.action.status == "approved" else "info"
    return _answer(
        request, action_id, level=level, text=decision_message(outcome, reason), status=200
    )


@require_POST
@role_required(APPROVER)
def action_verdict_view(request: HtmxHttpRequest, action_id: str) -> HttpResponse:
    form = VerdictForm(request.POST)
    if not form.is_valid():
        return _answer(request, action_id, level="error", text=form_errors_text(form), status=400)
    correct = form.cleaned_data["correct"]
    try:
        action_verdict_record(
            action_id=action_id, user=request.user, correct=correct, note=form.cleaned_data["note"]
        )
    except VerdictRefused as exc:
        if str(exc).startswith("No action"):
            raise Http404(str(exc)) from exc
        return _answer(request, action_id, level="error", text=str(exc), status=409)
    text = f"Recorded: the proposal was {'correct' if correct else 'incorrect'}. It counts towards the agent's accuracy."
    return _answer(request, action_id, level="ok", text=text, status=200)


@role_required(VIEWER)
def action_cost(request: HtmxHttpRequest, action_id: str) -> HttpResponse:
    """The action's cost and energy panel, loaded after the page: its shares read a day of the
    agent's and team's costs, which the approval queue's pane need not wait for."""
    from apps.costs.actions import action_cost_breakdown

    try:
        action = action_get(action_id=action_id, user=request.user)
    except Action.DoesNotExist as exc:
        raise Http404("No such action.") from exc
    return render(request, "actions/partials/cost.html", {"cost": action_cost_breakdown(action)})
