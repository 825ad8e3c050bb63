from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core.http import HtmxHttpRequest
from apps.notifications.models import Notification
from apps.notifications.selectors import inbox_page, unread_count
from apps.notifications.services import notifications_mark_read


@login_required
def inbox(request: HtmxHttpRequest) -> HttpResponse:
    context = inbox_page(
        user=request.user,
        page=request.GET.get("page"),
        unread_only=request.GET.get("unread") == "1",
    )
    return render(request, "notifications/inbox.html", context)


@require_POST
@login_required
def mark_read(request: HtmxHttpRequest, notification_id: int) -> HttpResponse:
    # Someone else's id is a 404, not a hint that it exists.
    notification = get_object_or_404(
        Notification.objects.for_user(request.user), pk=notification_id
    )
    notifications_mark_read(user=request.user, ids=[notification.pk])
    if not request.htmx:
        return redirect("notifications:inbox")
    notification.refresh_from_db()
    return render(
        request,
        "notifications/partials/row.html",
        {"n": notification, "unread_notifications": unread_count(request.user), "oob": True},
    )


@require_POST
@login_required
def mark_all_read(request: HtmxHttpRequest) -> HttpResponse:
    notifications_mark_read(user=request.user)
    return redirect("notifications:inbox")
