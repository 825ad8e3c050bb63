import csv
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from apps.accounts.roles import FINOPS
from apps.billing.allocation import allocation_preview
from apps.billing.forms import (
    AllocationRuleForm,
    BillingUploadForm,
    RecomputeForm,
    too_big_message,
)
from apps.billing.models import AllocationRule, BillingImport
from apps.billing.rules import (
    allocation_recompute_request,
    default_range,
    rule_create,
    rule_delete,
    rule_move,
    rule_update,
    rules_with_change,
)
from apps.billing.selectors import (
    CENT,
    allocation_runs_recent,
    billing_imports_recent,
    chargeback,
    chargeback_months,
    month_bounds,
)
from apps.billing.services import billing_import_create
from apps.core.exports import csv_safe
from apps.core.http import HtmxHttpRequest
from apps.core.views import role_required

# multipart boundaries and the format field on top of the file itself
UPLOAD_OVERHEAD_BYTES = 64 * 1024


# CSRF is checked in _import_list, after the size check: the CSRF middleware would read (and
# spool to disk) the whole multipart body first, and a 5 GB upload must be refused unread.
@csrf_exempt
@role_required(FINOPS)
def import_list(request: HttpRequest) -> HttpResponse:
    """The imports, newest first, and the upload form."""
    if request.method == "POST":
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.BILLING_UPLOAD_MAX_BYTES + UPLOAD_OVERHEAD_BYTES:
            return _render_list(
                request, BillingUploadForm(), status=413, upload_error=too_big_message(length)
            )
    return _import_list(request)


@csrf_protect
def _import_list(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _render_list(request, BillingUploadForm())
    form = BillingUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render_list(request, form, status=400)
    billing_import = billing_import_create(
        upload=form.cleaned_data["file"],
        format=form.cleaned_data["format"],
        uploaded_by=request.user,
    )
    messages.success(
        request,
        f"{billing_import.file_name} is queued as import #{billing_import.pk}; "
        "its row below updates as it runs.",
    )
    return redirect("billing:imports")


def _render_list(
    request: HttpRequest, form: BillingUploadForm, status: int = 200, upload_error: str = ""
) -> HttpResponse:
    return render(
        request,
        "billing/import_list.html",
        {
            "imports": billing_imports_recent(),
            "form": form,
            "upload_error": upload_error,
            "max_upload": settings.BILLING_UPLOAD_MAX_BYTES,
        },
        status=status,
    )


@role_required(FINOPS)
def import_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """One import with its row-level error report; its status row alone for HTMX polling."""
    billing_import = get_object_or_404(BillingImport.objects.select_related("uploaded_by"), pk=pk)
    if request.htmx:
        if not billing_import.in_progress and request.path in (request.htmx.current_url or ""):
            # Polled from this import's own page: reload it, the error report is ready.
            return HttpResponseClientRefresh()
        return render(request, "billing/partials/import_row.html", {"imp": billing_import})
    return render(request, "billing/import_detail.html", {"imp": billing_import})


# ---------------------------------------------------------------------------------------------
# Allocation rules and chargeback


def _rules_page(
    request: HttpRequest,
    form: AllocationRuleForm,
    *,
    editing: AllocationRule | None = None,
    recompute: RecomputeForm | None = None,
    preview: Any = None,
    status: int = 200,
) -> HttpResponse:
    start, end = default_range()
    return render(
        request,
        "billing/rules.html",
        {
            "rules": AllocationRule.objects.prefetch_related("teams").order_by("position", "id"),
            "form": form,
            "editing": editing,
            "runs": allocation_runs_recent(),
            "preview": preview,
            "preview_start": start,
            "preview_end": end - timedelta(days=1),
            "recompute": recompute
            or RecomputeForm(
                initial={"start": start.date(), "end": (end - timedelta(days=1)).date()}
            ),
        },
        status=status,
    )


@role_required(FINOPS)
def rule_list(request: HttpRequest) -> HttpResponse:
    """The ordered rules, the form to add one, and the recompute runs."""
    if request.method != "POST":
        return _rules_page(request, AllocationRuleForm(initial={"kind": "tag", "enabled": True}))
    form = AllocationRuleForm(request.POST)
    if not form.is_valid():
        return _rules_page(request, form, status=400)
    if "preview" in request.POST:
        return _rules_page(request, form, preview=_preview(form.rule_data, None))
    rule = rule_create(data=form.rule_data, user=request.user)
    messages.success(
        request, f"Rule '{rule.name}' added; allocations of the recent months are being recomputed."
    )
    return redirect("billing:rules")


@role_required(FINOPS)
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AllocationRule, pk=pk)
    if request.method != "POST":
        return _rules_page(request, AllocationRuleForm(instance=rule), editing=rule)
    form = AllocationRuleForm(request.POST, instance=rule)
    if not form.is_valid():
        return _rules_page(request, form, editing=rule, status=400)
    if "preview" in request.POST:
        return _rules_page(request, form, editing=rule, preview=_preview(form.rule_data, rule))
    rule_update(rule=rule, data=form.rule_data, user=request.user)
    messages.success(
        request, f"Rule '{rule.name}' saved; allocations of the recent months are being recomputed."
    )
    return redirect("billing:rules")


def _preview(clean: dict[str, Any], rule: AllocationRule | None) -> dict[str, Any]:
    """What saving would move, per team and currency, over the range a save recomputes."""
    from apps.fleet.models import Team

    start, end = default_range()
    result = allocation_preview(rules_with_change(clean, instance=rule), start, end)
    names = dict(Team.objects.values_list("pk", "slug"))
    rows = [
        {
            "team": names.get(r.team_id, "—") if r.team_id else None,
            "currency": r.currency,
            "before": r.before.quantize(CENT, rounding=ROUND_HALF_UP),
            "after": r.after.quantize(CENT, rounding=ROUND_HALF_UP),
            "change": r.change.quantize(CENT, rounding=ROUND_HALF_UP),
        }
        for r in result.rows
    ]
    rows.sort(key=lambda r: (r["team"] is None, r["team"] or "", r["currency"]))
    return {"rows": rows, "line_items": result.line_items, "truncated": result.truncated}


@require_POST
@role_required(FINOPS)
def rule_action(request: HttpRequest, pk: int, what: str) -> HttpResponse:
    rule = get_object_or_404(AllocationRule, pk=pk)
    if what == "delete":
        rule_delete(rule=rule, user=request.user)
        messages.success(request, f"Rule '{rule.name}' deleted; allocations are being recomputed.")
    else:
        rule_move(rule=rule, up=what == "up", user=request.user)
    return redirect("billing:rules")


@require_POST
@role_required(FINOPS)
def recompute(request: HttpRequest) -> HttpResponse:
    form = RecomputeForm(request.POST)
    if not form.is_valid():
        return _rules_page(request, AllocationRuleForm(), recompute=form, status=400)
    start = datetime.combine(form.cleaned_data["start"], time.min, tzinfo=UTC)
    end = datetime.combine(form.cleaned_data["end"] + timedelta(days=1), time.min, tzinfo=UTC)
    run = allocation_recompute_request(
        reason=f"asked for {start:%Y-%m-%d} to {form.cleaned_data['end']:%Y-%m-%d}",
        user=request.user,
        start=start,
        end=end,
    )
    messages.success(request, f"Recompute #{run.pk} is queued; its row below updates as it runs.")
    return redirect("billing:rules")


@role_required(FINOPS)
def run_rows(request: HttpRequest) -> HttpResponse:
    """The recompute runs' table body, polled by HTMX while one is in progress."""
    return render(request, "billing/partials/run_rows.html", {"runs": allocation_runs_recent()})


def _month(request: HttpRequest) -> tuple[str, list[str]]:
    months = chargeback_months()
    month = request.GET.get("month") or (months[0] if months else f"{timezone.now():%Y-%m}")
    try:
        month_bounds(month)
    except ValueError:
        raise Http404(f"No month {month!r}: use YYYY-MM, e.g. 2026-10.") from None
    return month, months


@role_required(FINOPS)
def chargeback_page(request: HttpRequest) -> HttpResponse:
    """Per team, for one month: allocated cloud cost and estimated LLM cost, with the rules."""
    month, months = _month(request)
    report = chargeback(month)
    return render(
        request,
        "billing/chargeback.html",
        {"report": report, "months": months, "month": month},
    )


@role_required(FINOPS)
def chargeback_csv(request: HttpRequest) -> HttpResponse:
    month, _ = _month(request)
    report = chargeback(month)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="chargeback-{month}.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "month",
            "team",
            "team_name",
            "currency",
            "cloud_billed",
            "cloud_effective",
            "llm_estimated_usd",
            "rules",
        ]
    )
    for row in report.rows:
        writer.writerow(
            [
                month,
                row.team_slug or "unallocated",
                csv_safe(row.team_name),
                row.currency,
                f"{row.billed:.2f}",
                f"{row.effective:.2f}",
                "" if row.llm_usd is None else f"{row.llm_usd:.2f}",
                csv_safe("; ".join(row.rules)),
            ]
        )
    for currency, (billed, effective) in report.totals.items():
        writer.writerow(
            [
                month,
                "total",
                "",
                currency,
                f"{billed:.2f}",
                f"{effective:.2f}",
                f"{report.llm_total:.2f}" if currency == "USD" else "",
                "",
            ]
        )
    return response
