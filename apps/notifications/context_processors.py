from typing import Any

from django.http import HttpRequest

from apps.notifications.selectors import unread_count


def notifications(request: HttpRequest) -> dict[str, Any]:
    """The bell in the top bar: one indexed count per page for signed-in people."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or getattr(user, "is_agent", False):
        return {}
    return {"unread_notifications": unread_count(user)}
