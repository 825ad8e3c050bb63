from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from apps.actions.models import Action
from apps.audit.models import EventDailyCount
from apps.fleet.models import Agent, AgentToken, Team


def fleet_overview(*, days: int = 42) -> dict[str, Any]:
    """Teams, agents with their last-7-day activity, and events per day for the chart."""
    today = timezone.now().date()
    since = today - timedelta(days=days - 1)
    week = today - timedelta(days=6)
    agents = list(
        Agent.objects.select_related("team")
        .annotate(
            events_7d=Sum("events_daily__events", filter=Q(events_daily__day__gte=week)),
        )
        .order_by("team__slug", "slug")
    )
    action_counts = dict(
        Action.objects.filter(proposed_at__date__gte=week)
        .values_list("agent_id")
        .annotate(n=Count("id"))
        .values_list("agent_id", "n")
    )
    per_day = (
        EventDailyCount.objects.filter(day__gte=since)
        .values("day", "agent__team__slug")
        .annotate(n=Sum("events"))
        .order_by("day")
    )
    series: dict[str, dict[str, int]] = {}
    for row in per_day:
        series.setdefault(row["agent__team__slug"], {})[row["day"].isoformat()] = row["n"]
    days_axis = [(since + timedelta(days=i)).isoformat() for i in range(days)]
    figure = {
        "data": [
            {
                "type": "bar",
                "name": team,
                "x": days_axis,
                "y": [counts.get(d, 0) for d in days_axis],
            }
            for team, counts in sorted(series.items())
        ],
        "layout": {
            "title": {"text": "Audit events per day, by team"},
            "barmode": "stack",
            "yaxis": {"title": {"text": "events / day"}},
            "xaxis": {"title": {"text": "day (UTC)"}},
        },
    }
    from apps.audit.selectors import derived_lag

    return {
        "derived_behind": derived_lag().get("daily_counts", 0),
        "teams": Team.objects.annotate(agent_count=Count("agents")).order_by("slug"),
        "agents": agents,
        "agent_rows": [
            {"agent": a, "events_7d": a.events_7d or 0, "actions_7d": action_counts.get(a.pk, 0)}
            for a in agents
        ],
        "events_chart": figure,
        "total_events_7d": sum(a.events_7d or 0 for a in agents),
    }


def agent_tokens(agent: Agent) -> list[AgentToken]:
    return list(agent.tokens.order_by("-created_at"))
