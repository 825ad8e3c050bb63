from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django_htmx.http import HttpResponseClientRefresh

from apps.accounts.roles import FINOPS
from apps.billing.forms import BillingUploadForm, too_big_message
from apps.billing.models import BillingImport
from apps.billing.selectors import billing_imports_recent
from apps.billing.services import billing_import_create
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
