from typing import Any

from django.core.paginator import Page, Paginator

from apps.notifications.models import CallbackDelivery, Notification

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


def callback_deliveries_recent(*, agent: Any, limit: int = 20) -> list[CallbackDelivery]:
    """The agent page's list: newest decision callbacks with their attempts and last result."""
    return list(
        CallbackDelivery.objects.filter(agent=agent)
        .select_related("action")
        .only(
            "pk",
            "created_at",
            "attempts",
            "last_status",
            "last_error",
            "last_attempt_at",
            "next_attempt_at",
            "delivered_at",
            "gave_up_at",
            "decision_event_id",
            "action__action_id",
            "action__decision",
        )
        .order_by("-created_at", "-pk")[:limit]
    )
