"""The LLM price table: everyone with a role reads it; FinOps adds rows (never edits them)."""

import csv
from decimal import ROUND_HALF_UP, Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from apps.accounts.roles import FINOPS, SRE_LEAD, VIEWER, has_role
from apps.core.views import role_required
from apps.costs.energy_selectors import energy_report
from apps.costs.forms import EnergyFilterForm, ModelPriceForm
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


ENERGY_CSV_HEADER = [
    "group",
    "llm_calls",
    "measured_wh",
    "estimated_wh_llm",
    "estimated_wh_cloud",
    "total_wh",
    "measured_gco2e",
    "estimated_gco2e",
    "actions",
    "measured_wh_per_action",
    "estimated_wh_per_action",
]


def csv_safe(text: str) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet; model names come from agents.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def _six(value: Decimal | None) -> str:
    # Half up, as the page's floatformat rounds.
    return "" if value is None else f"{value.quantize(Decimal('0.000001'), ROUND_HALF_UP)}"


@role_required(FINOPS, SRE_LEAD)
def energy(request: HttpRequest) -> HttpResponse:
    """Wh and gCO2e by a dimension over a date range, measured and estimated apart; CSV too."""
    form = EnergyFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "costs/energy.html", {"form": form, "report": None}, status=400)
    data = form.cleaned_data
    report = energy_report(dimension=data["by"], start=data["start"], end=data["end"])
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        name = f"energy-by-{report.dimension}-{report.start}-to-{report.end}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        writer = csv.writer(response)
        writer.writerow([report.dimension, *ENERGY_CSV_HEADER[1:]])
        for row in [*report.rows, report.total]:
            writer.writerow(
                [
                    csv_safe(row.label),
                    row.llm_calls,
                    _six(row.measured_wh),
                    _six(row.llm_estimated_wh),
                    _six(row.cloud_estimated_wh),
                    _six(row.total_wh),
                    _six(row.measured_gco2e),
                    _six(row.estimated_gco2e),
                    row.actions,
                    _six(row.measured_wh_per_action),
                    _six(row.estimated_wh_per_action),
                ]
            )
        return response
    query = request.GET.copy()
    query["format"] = "csv"
    return render(
        request,
        "costs/energy.html",
        {"form": form, "report": report, "csv_query": query.urlencode()},
    )
