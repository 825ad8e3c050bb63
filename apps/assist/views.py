from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from apps.accounts.roles import VIEWER
from apps.actions.models import Action
from apps.assist.services import AssistError, action_explain
from apps.core.views import role_required


@require_POST
@role_required(VIEWER)
def action_explain_view(request: HttpRequest, action_id: str) -> HttpResponse:
    """An HTML fragment for HTMX: the explanation, or what went wrong and what to do.

    Failures answer with their real status (404, 429, 502, 503, 504); the button's container
    tells HTMX to swap those fragments in too.
    """
    regenerate = request.POST.get("regenerate") == "1"
    try:
        explanation = action_explain(action_id=action_id, user=request.user, regenerate=regenerate)
    except Action.DoesNotExist:
        return render(
            request,
            "assist/_explain_error.html",
            {"message": "There is no action with this id (it may have been mistyped)."},
            status=404,
        )
    except AssistError as exc:
        response = render(
            request,
            "assist/_explain_error.html",
            {"message": exc.message, "action_id": action_id, "retryable": exc.status != 503},
            status=exc.status,
        )
        if exc.retry_after:
            response["Retry-After"] = str(exc.retry_after)
        return response
    return render(
        request,
        "assist/_explanation.html",
        {"explanation": explanation, "action_id": action_id},
    )
