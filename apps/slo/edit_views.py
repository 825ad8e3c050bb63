"""Define, change and delete SLOs in the browser (sre_lead and admin)."""

import json
from zoneinfo import available_timezones

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.accounts.roles import SRE_LEAD
from apps.core.views import role_required
from apps.slo.forms import SloForm
from apps.slo.models import Slo
from apps.slo.services import THRESHOLD_UNITS, slo_create, slo_delete, slo_update


def slo_page(slug: str) -> str:
    """The SLO's own page (built by the SLO pages)."""
    return f"/slos/{slug}/"


def _slo(slug: str) -> Slo:
    slo = Slo.objects.select_related("team", "agent").filter(slug=slug).first()  # <slug:> path
    if slo is None:
        raise Http404(f"There is no SLO “{slug}”.")
    return slo


def _render(
    request: HttpRequest, form: SloForm, slo: Slo | None, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "slo/slo_form.html",
        {
            "form": form,
            "slo": slo,
            "threshold_units_json": json.dumps(THRESHOLD_UNITS),
            "time_zones": sorted(available_timezones()),
        },
        status=status,
    )


def _save(request: HttpRequest, form: SloForm, slo: Slo | None) -> HttpResponse:
    if not form.is_valid():
        return _render(request, form, slo, status=400)
    fields = form.service_fields()
    try:
        if slo is None:
            saved = slo_create(by=request.user, **fields)
        else:
            saved = slo_update(slo, by=request.user, **fields)
    except ValidationError as exc:
        for name, problems in exc.message_dict.items():
            for problem in problems:
                form.add_error(name if name in form.fields else None, problem)
        return _render(request, form, slo, status=400)
    if slo is None:
        messages.success(request, f"Created SLO “{saved.name}”.")
    elif saved.revision != slo.revision:
        messages.success(
            request,
            f"Saved “{saved.name}”. What it counts changed: revision {saved.revision}, "
            "its history was recomputed.",
        )
    else:
        messages.success(request, f"Saved “{saved.name}”.")
    return redirect(slo_page(saved.slug))


@role_required(SRE_LEAD)
@require_http_methods(["GET", "POST"])
def slo_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request, SloForm(request.POST), None)
    return _render(request, SloForm(initial=SloForm.initial_for(None)), None)


@role_required(SRE_LEAD)
@require_http_methods(["GET", "POST"])
def slo_edit(request: HttpRequest, slug: str) -> HttpResponse:
    slo = _slo(slug)
    initial = SloForm.initial_for(slo)
    if request.method == "POST":
        return _save(request, SloForm(request.POST, initial=initial, editing=slo), slo)
    return _render(request, SloForm(initial=initial, editing=slo), slo)


@role_required(SRE_LEAD)
@require_http_methods(["GET", "POST"])
def slo_delete_view(request: HttpRequest, slug: str) -> HttpResponse:
    """GET asks for confirmation; POST deletes."""
    slo = _slo(slug)
    if request.method == "POST":
        slo_delete(slo, by=request.user)
        messages.success(request, f"Deleted SLO “{slo.name}” with its history and alerts.")
        return redirect("/slos/")
    return render(request, "slo/slo_delete.html", {"slo": slo})
