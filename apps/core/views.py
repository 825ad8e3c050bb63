from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from apps.accounts.roles import VIEWER, has_role


def role_required(
    *roles: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Login, then one of the roles (admin passes everything)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not has_role(request.user, *roles):
                raise PermissionDenied(f"This page needs one of the roles: {', '.join(roles)}.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


@role_required(VIEWER)
def home(request: HttpRequest) -> HttpResponse:
    from apps.fleet.selectors import fleet_overview

    return render(request, "core/home.html", fleet_overview())


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness plus how far derived work (rollups) lags behind the ledger, in seals."""
    from apps.audit.selectors import derived_lag

    return JsonResponse(
        {"status": "ok", "database": connection.vendor, "derived_lag": derived_lag()}
    )
