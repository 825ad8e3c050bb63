from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.exceptions import DATABASE_RETRY_AFTER_SECONDS, database_is_unreachable


class DatabaseUnavailableMiddleware:
    """Turns 'database unreachable' anywhere outside DRF (sessions, auth, pages) into a 503."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        except DatabaseError as exc:
            if not database_is_unreachable(exc):
                raise
            return self.unavailable(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, DatabaseError) and database_is_unreachable(exc):
            return self.unavailable(request)
        return None

    @staticmethod
    def unavailable(request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(
                {
                    "error": "The database is unavailable; nothing was stored. Retry later.",
                    "status": 503,
                },
                status=503,
            )
        else:
            response = HttpResponse(
                "opsdash cannot reach its database right now. Try again in a few seconds.",
                status=503,
                content_type="text/plain",
            )
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
