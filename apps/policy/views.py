"""Policy pages: versions, one version, diff, editor (validate, save, dry run), rollback, shadow."""

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.roles import SRE_LEAD, VIEWER, has_role
from apps.core.views import role_required
from apps.policy.display import diff_rows, error_excerpt, source_lines, unplaced_errors
from apps.policy.dry_run import DEFAULT_DAYS, MAX_DAYS, dry_run_window, policy_dry_run
from apps.policy.engine import CompiledPolicy
from apps.policy.models import PolicyVersion
from apps.policy.schema import PolicyError, PolicyInvalid, policy_parse
from apps.policy.selectors import (
    compiled_version,
    policy_active_version,
    policy_version_get,
    policy_versions,
    shadow_summary,
)
from apps.policy.services import (
    PolicyRefused,
    policy_shadow_start,
    policy_shadow_stop,
    policy_version_activate,
    policy_version_create,
)


def _version(number: int) -> PolicyVersion:
    version = policy_version_get(number)
    if version is None:
        raise Http404(f"There is no policy version {number}.")
    return version


def _can_edit(request: HttpRequest) -> bool:
    return has_role(request.user, SRE_LEAD)


def _days(raw: str | None) -> tuple[int, str]:
    """Days for a dry run from a query value, with a message when it had to be corrected."""
    try:
        days = int(raw) if raw not in (None, "") else DEFAULT_DAYS
    except ValueError:
        return DEFAULT_DAYS, f"“{raw}” is not a number of days; showing {DEFAULT_DAYS}."
    if not 1 <= days <= MAX_DAYS:
        clamped = min(max(days, 1), MAX_DAYS)
        return clamped, f"A dry run covers 1 to {MAX_DAYS} days; showing {clamped}."
    return days, ""


@role_required(VIEWER)
def versions(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "policy/versions.html",
        {
            "versions": policy_versions(),
            "shadow": shadow_summary(limit=0),
            "can_edit": _can_edit(request),
        },
    )


@role_required(VIEWER)
def version_detail(request: HttpRequest, number: int) -> HttpResponse:
    version = _version(number)
    return render(
        request,
        "policy/version_detail.html",
        {
            "version": version,
            "lines": source_lines(version.source),
            "active": policy_active_version(),
            "can_edit": _can_edit(request),
        },
    )


@role_required(VIEWER)
def version_diff(request: HttpRequest, number: int) -> HttpResponse:
    version = _version(number)
    against_raw = request.GET.get("against", "")
    base = _version(int(against_raw)) if against_raw.isdigit() else policy_active_version()
    return render(
        request,
        "policy/version_diff.html",
        {
            "version": version,
            "base": base,
            "rows": diff_rows(base.source if base else "", version.source),
            "old_label": f"v{base.number}" if base else "none",
            "new_label": f"v{version.number}",
            "versions": policy_versions(),
            "can_edit": _can_edit(request),
        },
    )


@role_required(SRE_LEAD)
@require_http_methods(["GET", "POST"])
def version_activate(request: HttpRequest, number: int) -> HttpResponse:
    """GET asks for confirmation (showing what changes); POST activates."""
    version = _version(number)
    active = policy_active_version()
    if request.method == "POST":
        if version.active:
            messages.info(request, f"v{version.number} is already the active policy.")
        else:
            policy_version_activate(version=version, activated_by=request.user.get_username())
            word = "Rolled back to" if active and active.number > version.number else "Activated"
            messages.success(
                request, f"{word} v{version.number}. New proposals are decided by it from now on."
            )
        return redirect("policy:versions")
    return render(
        request,
        "policy/version_activate.html",
        {
            "version": version,
            "active": active,
            "rows": diff_rows(active.source if active else "", version.source),
            "old_label": f"v{active.number}" if active else "none",
            "new_label": f"v{version.number}",
            "rollback": bool(active and active.number > version.number),
        },
    )


@role_required(SRE_LEAD)
@require_http_methods(["GET", "POST"])
def editor(request: HttpRequest) -> HttpResponse:
    """GET: the active source (or ?from=N) in the editor. POST: save as draft or activate."""
    active = policy_active_version()
    if request.method == "GET":
        start = active
        from_raw = request.GET.get("from", "")
        if from_raw.isdigit():
            start = _version(int(from_raw))
        return render(
            request,
            "policy/editor.html",
            {
                "source": start.source if start else "",
                "start": start,
                "active": active,
                "note": "",
            },
        )
    source = request.POST.get("source", "").replace("\r\n", "\n")
    note = request.POST.get("note", "")[:200]
    activate = request.POST.get("save") == "activate"
    try:
        version, created = policy_version_create(
            source=source,
            created_by=request.user.get_username(),
            note=note,
            activate=activate,
        )
    except PolicyInvalid as exc:
        context = {"source": source, "active": active, "note": note, "start": None}
        context.update(_validation(source, exc.errors))
        return render(request, "policy/editor.html", context, status=400)
    if not created:
        messages.info(request, f"This is the active policy v{version.number}; nothing changed.")
    elif activate:
        messages.success(request, f"Saved and activated v{version.number}.")
    else:
        messages.success(
            request,
            f"Saved v{version.number} as a draft. Dry-run it, shadow it, or activate it below.",
        )
    return redirect("policy:version", number=version.number)


def _validation(source: str, errors: list[PolicyError]) -> dict[str, Any]:
    return {
        "errors": errors,
        "excerpt": error_excerpt(source, errors),
        "unplaced": unplaced_errors(errors),
        "error_lines": sorted({e.line for e in errors if e.line is not None}),
    }


@role_required(SRE_LEAD)
@require_POST
def validate(request: HttpRequest) -> HttpResponse:
    """The editor's Validate button (HTMX): errors at their lines, or a short all-clear."""
    source = request.POST.get("source", "").replace("\r\n", "\n")
    context: dict[str, Any] = {"validated": True}
    try:
        document = policy_parse(source)
    except PolicyInvalid as exc:
        context.update(_validation(source, exc.errors))
    else:
        context["rule_count"] = len(document.rules)
    return render(request, "policy/partials/validation.html", context)


@role_required(VIEWER)
@require_http_methods(["GET", "POST"])
def dry_run(request: HttpRequest) -> HttpResponse:
    """GET ?version=N&days=D: a saved version. POST source (editor, sre_lead): unsaved text."""
    params = request.POST if request.method == "POST" else request.GET
    days, days_message = _days(params.get("days"))
    context: dict[str, Any] = {
        "days": days,
        "days_message": days_message,
        "max_days": MAX_DAYS,
        "versions": policy_versions(),
        "can_edit": _can_edit(request),
    }
    policy: CompiledPolicy | None = None
    if request.method == "POST":
        if not _can_edit(request):
            raise PermissionDenied("Dry-running unsaved text needs the sre_lead or admin role.")
        source = params.get("source", "").replace("\r\n", "\n")
        try:
            policy = CompiledPolicy(policy_parse(source), version=None)
        except PolicyInvalid as exc:
            context.update(_validation(source, exc.errors))
            context["validated"] = True
            return render(request, "policy/partials/validation.html", context)
        context["label"] = "the editor's text"
    else:
        number = params.get("version", "")
        if number.isdigit():
            version = _version(int(number))
            policy = compiled_version(version.pk, version.number)
            context["version"] = version
            context["label"] = f"v{version.number}"
    if policy is not None:
        since, until = dry_run_window(days, now=timezone.now())
        context["report"] = policy_dry_run(policy=policy, since=since, until=until)
    template = (
        "policy/partials/dry_run.html"
        if request.headers.get("HX-Request")
        else "policy/dry_run.html"
    )
    return render(request, template, context)


@role_required(VIEWER)
@require_http_methods(["GET", "POST"])
def shadow(request: HttpRequest) -> HttpResponse:
    """The shadow (canary) policy: its differences, and starting or stopping it."""
    from apps.fleet.models import Agent

    if request.method == "POST":
        if not _can_edit(request):
            raise PermissionDenied(
                "Starting or stopping a shadow needs the sre_lead or admin role."
            )
        user = request.user.get_username()
        if request.POST.get("op") == "stop":
            stopped = policy_shadow_stop(stopped_by=user)
            if stopped is None:
                messages.info(request, "No shadow was running.")
            else:
                messages.success(request, f"Stopped the shadow of v{stopped.version.number}.")
            return redirect("policy:shadow")
        number = request.POST.get("version", "")
        version = policy_version_get(int(number)) if number.isdigit() else None
        try:
            if version is None:
                raise PolicyRefused("Choose a saved version to shadow.")
            started = policy_shadow_start(
                version=version, agents=request.POST.getlist("agents"), started_by=user
            )
        except PolicyRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"v{started.version.number} now shadows the active policy for "
                f"{', '.join(started.agents)}.",
            )
        return redirect("policy:shadow")
    return render(
        request,
        "policy/shadow.html",
        {
            "summary": shadow_summary(),
            "versions": [v for v in policy_versions() if not v.active],
            "agents": list(Agent.objects.order_by("slug").values_list("slug", flat=True)),
            "can_edit": _can_edit(request),
            "preselect": request.GET.get("version", ""),
        },
    )
