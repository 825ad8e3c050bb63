"""The LLM price table: everyone with a role reads it; FinOps adds rows (never edits them)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from apps.accounts.roles import FINOPS, VIEWER, has_role
from apps.core.views import role_required
from apps.costs.forms import ModelPriceForm
from apps.costs.selectors import price_rows, unpriced_models
from apps.costs.services import model_price_create


def _render(request: HttpRequest, form: ModelPriceForm, status: int = 200) -> HttpResponse:
    return render(
        request,
        "costs/prices.html",
        {
            "form": form,
            "rows": price_rows(),
            "unpriced": unpriced_models(),
            "can_edit": has_role(request.user, FINOPS),
        },
        status=status,
    )


@role_required(VIEWER, FINOPS)
@require_http_methods(["GET", "POST"])
def prices(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        initial = {"effective_from": timezone.now().strftime("%Y-%m-%d 00:00")}
        for name, limit in (("provider", 64), ("model", 200)):  # from "Add a price" links
            value = request.GET.get(name, "")[:limit]
            if value:
                initial[name] = value
        return _render(request, ModelPriceForm(initial=initial))
    if not has_role(request.user, FINOPS):
        raise PermissionDenied("Only FinOps can add prices.")
    form = ModelPriceForm(request.POST)
    if not form.is_valid():
        return _render(request, form, status=400)
    fields = form.service_fields()
    try:
        row = model_price_create(by=request.user, **fields)
    except ValidationError as exc:
        for name, problems in exc.message_dict.items():
            for problem in problems:
                form.add_error(name if name in form.fields else None, problem)
        return _render(request, form, status=400)
    if row.effective_from <= timezone.now():
        from apps.costs.tasks import llm_calls_reprice_task

        since = row.effective_from.isoformat()
        transaction.on_commit(lambda: llm_calls_reprice_task.delay(since))
        messages.success(
            request,
            f"Added the price of {row.provider}/{row.model} from "
            f"{row.effective_from:%Y-%m-%d %H:%M} UTC; calls stored since then are being repriced.",
        )
    else:
        messages.success(
            request,
            f"Added the price of {row.provider}/{row.model} from "
            f"{row.effective_from:%Y-%m-%d %H:%M} UTC.",
        )
    return redirect("costs:prices")
