from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.roles import ADMIN, VIEWER
from apps.audit import selectors
from apps.audit.models import Event, EventType
from apps.audit.services.ledger import event_inclusion_proof
from apps.core.http import HtmxHttpRequest
from apps.core.views import role_required


@role_required(VIEWER)
def event_list(request: HtmxHttpRequest) -> HttpResponse:
    context = selectors.event_page(params=request.GET, user=request.user)
    context["event_types"] = EventType.values
    template = "audit/partials/event_table.html" if request.htmx else "audit/event_list.html"
    return render(request, template, context)


@role_required(VIEWER)
def event_detail(request: HttpRequest, event_id: str) -> HttpResponse:
    try:
        event = selectors.event_detail(event_id=event_id, user=request.user)
    except (Event.DoesNotExist, ValueError) as exc:
        raise Http404("No such event.") from exc
    return render(
        request,
        "audit/event_detail.html",
        {"event": event, "proof": event_inclusion_proof(event)},
    )


@role_required(VIEWER)
def ledger(request: HttpRequest) -> HttpResponse:
    return render(request, "audit/ledger.html", selectors.ledger_status())


@require_POST
@role_required(ADMIN)
def ledger_verify_now(request: HttpRequest) -> HttpResponse:
    from apps.audit.tasks import ledger_verify_task

    try:
        ledger_verify_task.apply_async(kwargs={"triggered_by": request.user.username}, retry=False)
        messages.info(request, "Verification queued; this page shows its result when it finishes.")
    except Exception:  # broker down: say so, nothing else depends on it
        messages.error(request, "Could not queue the verification: the task broker is unreachable.")
    return redirect("audit:ledger")
