"""The LLM price table (everyone with a role reads it; FinOps adds rows, never edits them) and
the cost explorer."""

import csv
from decimal import ROUND_HALF_UP, Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.roles import FINOPS, SRE_LEAD, VIEWER, has_role
from apps.core.exports import csv_safe
from apps.core.http import HtmxHttpRequest
from apps.core.views import role_required
from apps.costs.energy_selectors import energy_report
from apps.costs.explorer import (
    DRIVERS,
    Explorer,
    cost_explorer,
    explorer_chart,
    explorer_choices,
)
from apps.costs.forms import DriverRateForm, EnergyFilterForm, ExplorerForm, ModelPriceForm
from apps.costs.selectors import driver_rate_rows, price_rows, unpriced_models
from apps.costs.services import driver_rate_create, model_price_create


def _render(
    request: HttpRequest,
    form: ModelPriceForm,
    status: int = 200,
    rate_form: DriverRateForm | None = None,
) -> HttpResponse:
    return render(
        request,
        "costs/prices.html",
        {
            "form": form,
            "rows": price_rows(),
            "unpriced": unpriced_models(),
            "rates": driver_rate_rows(),
            "rate_form": rate_form
            or DriverRateForm(initial={"effective_from": timezone.now().date()}),
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


@role_required(FINOPS, SRE_LEAD)
@require_GET
def explorer(request: HtmxHttpRequest) -> HttpResponse:
    form = ExplorerForm(request.GET)
    page = "costs/partials/explorer_result.html" if request.htmx else "costs/explorer.html"
    if not form.is_valid():
        return render(request, page, {"form": form, "choices": explorer_choices()}, status=400)
    result = cost_explorer(form.query())
    if request.GET.get("format") == "csv":
        return _explorer_csv(result)
    context = {
        "form": form,
        "choices": explorer_choices(),
        "result": result,
        "chart": explorer_chart(result),
        "drivers": DRIVERS,
        "csv_query": _with(request, format="csv"),
        "other_currency_links": [
            (currency, total, _with(request, currency=currency))
            for currency, total in sorted(result.gaps.other_currencies.items())
        ],
    }
    return render(request, page, context)


def _with(request: HttpRequest, **changes: str) -> str:
    query = request.GET.copy()
    for name, value in changes.items():
        query[name] = value
    return query.urlencode()


def _micro(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def _explorer_csv(result: Explorer) -> HttpResponse:
    q = result.query
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="opsdash-costs-by-{q.dimension}-{q.start}-{q.end}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(["day", q.dimension, "currency", "cost"])
    # Six decimal places: exact for bills and list prices to the micro-unit, and one width.
    for row in sorted(result.rows, key=lambda r: r.value):
        for day in q.days():
            if day in row.per_day:
                writer.writerow(
                    [day.isoformat(), csv_safe(row.value), q.currency, _micro(row.per_day[day])]
                )
    writer.writerow(["total", "", q.currency, _micro(result.total)])
    return response


@role_required(FINOPS)
@require_POST
def driver_rate_add(request: HttpRequest) -> HttpResponse:
    form = DriverRateForm(request.POST)
    blank_price_form = ModelPriceForm(
        initial={"effective_from": timezone.now().strftime("%Y-%m-%d 00:00")}
    )
    if not form.is_valid():
        return _render(request, blank_price_form, status=400, rate_form=form)
    try:
        rate = driver_rate_create(by=request.user, **form.cleaned_data)
    except ValidationError as exc:
        for name, problems in exc.message_dict.items():
            for problem in problems:
                form.add_error(name if name in form.fields else None, problem)
        return _render(request, blank_price_form, status=400, rate_form=form)
    messages.success(request, f"Added the rate {rate}; the cost explorer uses it from that day.")
    return redirect(f"{reverse('costs:prices')}#driver-rates")


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
