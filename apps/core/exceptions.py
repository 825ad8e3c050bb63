"""One JSON shape for every API error: {"error": "...", "detail": ..., "status": N}."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 5


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; nothing was stored. Retry later."
    default_code = "service_unavailable"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DatabaseError) and database_is_unreachable(exc):
        logger.warning("database unavailable: %s", exc)
        exc = ServiceUnavailable()

    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(detail, dict) and "detail" in detail and len(detail) == 1:
        message = str(detail["detail"])
        detail = None
    elif isinstance(detail, list):
        message = "; ".join(str(d) for d in detail)
        detail = None
    else:
        message = "The request is not valid."
    response.data = {"error": message, "status": response.status_code}
    if detail is not None:
        response.data["detail"] = detail
    if response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def database_is_unreachable(exc: BaseException) -> bool:
    """True for connection-level failures (server down), not for bad SQL or constraint errors."""
    from django.db import InterfaceError, OperationalError

    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    text = str(exc).lower()
    return any(
        marker in text
        for marker in (
            "connection",
            "could not connect",
            "server closed",
            "terminating",
            "database is locked",
            "unable to open database",
            "the database system is",
            "timeout",
        )
    )
