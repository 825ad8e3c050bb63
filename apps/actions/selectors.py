from typing import Any

from django.http import QueryDict

from apps.actions.models import Action, ActionStatus

PAGE_SIZE = 50


def action_page(*, params: QueryDict, user: object) -> dict[str, Any]:
    qs = Action.objects.visible_to(user).select_related("agent", "agent__team")
    status = params.get("status")
    if status in ActionStatus.values:
        qs = qs.filter(status=status)
    if params.get("violation"):
        qs = qs.filter(policy_violation=True)
    if params.get("agent"):
        qs = qs.filter(agent__slug=params["agent"])
    try:
        page = max(int(params.get("page", "1")), 1)
    except ValueError:
        page = 1
    rows = list(qs.order_by("-proposed_at", "-id")[(page - 1) * PAGE_SIZE : page * PAGE_SIZE + 1])
    return {
        "actions": rows[:PAGE_SIZE],
        "page": page,
        "has_next": len(rows) > PAGE_SIZE,
        "statuses": ActionStatus.choices,
        "status": status or "",
    }
