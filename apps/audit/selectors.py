import uuid
from datetime import datetime
from typing import Any

from django.db.models import Q, Sum
from django.http import QueryDict
from django.utils.dateparse import parse_datetime

from apps.audit.filters import EventFilter
from apps.audit.models import DerivedCursor, Event, LedgerHead, LedgerSeal
from apps.fleet.models import Agent

PAGE_SIZE = 50


def event_page(*, params: QueryDict, user: object) -> dict[str, Any]:
    """Filtered audit events, newest first, keyset-paginated on (ts, id) so deep pages stay fast."""
    qs = Event.objects.visible_to(user).select_related("agent")
    event_filter = EventFilter(params, queryset=qs)
    events_qs = event_filter.qs if event_filter.is_valid() else qs.none()
    before = params.get("before")
    cursor = _parse_cursor(before) if before else None
    if cursor is not None:
        ts, last_id = cursor
        events_qs = events_qs.filter(Q(ts__lt=ts) | Q(ts=ts, id__lt=last_id))
    rows = list(events_qs.order_by("-ts", "-id")[: PAGE_SIZE + 1])
    has_more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_params = params.copy()
    if has_more:
        last = rows[-1]
        next_params["before"] = f"{last.ts.isoformat()}|{last.id}"
    return {
        "events": rows,
        "filter": event_filter,
        "errors": event_filter.errors if not event_filter.is_valid() else None,
        "next_query": next_params.urlencode() if has_more else None,
        "first_query": _without(params, "before"),
        "is_first_page": not before,
        "agents": Agent.objects.order_by("slug").values_list("slug", flat=True),
    }


def _parse_cursor(text: str) -> tuple[datetime, uuid.UUID] | None:
    """A page cursor "ts|id"; anything malformed means "from the newest"."""
    ts_text, _, id_text = text.partition("|")
    try:
        ts = parse_datetime(ts_text)
        last_id = uuid.UUID(id_text)
    except ValueError:
        return None
    if ts is None or ts.tzinfo is None:
        return None
    return ts, last_id


def _without(params: QueryDict, key: str) -> str:
    copy = params.copy()
    copy.pop(key, None)
    return copy.urlencode()


def ledger_status() -> dict[str, Any]:
    from apps.audit.models import LedgerVerification
    from apps.audit.services.ledger import GENESIS_HASH

    head = LedgerHead.objects.filter(pk=1).first() or LedgerHead(seq=0, seal_hash=GENESIS_HASH)
    return {
        "head": head,
        "seal_count": head.seq,
        # Summed over seals, not counted over rows: cheap at ten million events.
        "event_count": LedgerSeal.objects.aggregate(n=Sum("event_count"))["n"] or 0,
        "latest_seals": LedgerSeal.objects.order_by("-seq")[:10],
        "last_verification": LedgerVerification.objects.order_by("-started_at").first(),
        "verifications": LedgerVerification.objects.order_by("-started_at")[:10],
    }


def event_detail(*, event_id: str, user: object) -> Event:
    return Event.objects.visible_to(user).select_related("agent", "agent__team").get(pk=event_id)


def derived_lag() -> dict[str, int]:
    """Seals each derived-work consumer has not applied yet (0 = up to date)."""
    from apps.audit.services.derived import CONSUMERS

    head = LedgerSeal.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    cursors = dict(DerivedCursor.objects.values_list("name", "last_seq"))
    return {name: head - cursors.get(name, 0) for name in CONSUMERS}
