from typing import Any

from django.core.paginator import Page, Paginator

from apps.notifications.models import Notification

INBOX_PAGE_SIZE = 50


def unread_count(user: Any) -> int:
    return Notification.objects.for_user(user).unread().count()


def inbox_page(*, user: Any, page: str | int | None, unread_only: bool = False) -> dict[str, Any]:
    """One page of a person's notifications, newest first, with the unread count."""
    qs = Notification.objects.for_user(user).only(
        "pk", "kind", "title", "body", "url", "created_at", "read_at"
    )
    if unread_only:
        qs = qs.unread()
    notifications: Page = Paginator(qs, INBOX_PAGE_SIZE).get_page(page)
    return {
        "page": notifications,
        "unread_only": unread_only,
        "unread_count": unread_count(user),
    }
