"""Derived work that follows the ledger: each consumer keeps a cursor (the last seal it saw).

Advancing the cursor and writing the derived rows happen in one transaction, with the cursor
row locked, so a task that runs twice, or a task racing the periodic sweep, counts once.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.audit.models import DerivedCursor, Event, EventDailyCount, LedgerSeal

logger = logging.getLogger(__name__)

SEALS_PER_STEP = 500

DerivedConsumer = Callable[[Sequence[LedgerSeal]], None]


def daily_counts_apply(seals: Sequence[LedgerSeal]) -> None:
    """Adds the events of newly sealed batches to the per-agent, per-day counts."""
    rows = (
        Event.objects.filter(batch_id__in=[s.batch_id for s in seals])
        .annotate(day=TruncDate("ts"))
        .values("agent_id", "day", "type")
        .annotate(n=Count("id"), b=Sum("size_bytes"))
    )
    increments: dict[tuple[int, date, str], tuple[int, int]] = {}
    for row in rows:
        increments[(row["agent_id"], row["day"], row["type"])] = (row["n"], row["b"] or 0)
    if not increments:
        return
    existing = {
        (c.agent_id, c.day, c.type): c
        for c in EventDailyCount.objects.filter(
            agent_id__in={k[0] for k in increments}, day__in={k[1] for k in increments}
        )
    }
    to_create: list[EventDailyCount] = []
    to_update: list[EventDailyCount] = []
    for key, (n, b) in increments.items():
        count = existing.get(key)
        if count is None:
            to_create.append(
                EventDailyCount(agent_id=key[0], day=key[1], type=key[2], events=n, bytes=b)
            )
        else:
            count.events += n
            count.bytes += b
            to_update.append(count)
    EventDailyCount.objects.bulk_create(to_create)
    EventDailyCount.objects.bulk_update(to_update, ["events", "bytes"])


CONSUMERS: dict[str, DerivedConsumer] = {"daily_counts": daily_counts_apply}


def derived_register(name: str, consumer: DerivedConsumer) -> None:
    """Later features (SLO rollups, spend) add their consumers here."""
    CONSUMERS[name] = consumer


def derived_catch_up(*, names: Sequence[str] | None = None, max_steps: int = 1000) -> int:
    """Feeds every consumer the seals it has not seen yet; returns how many seals were applied."""
    applied = 0
    for name in names or list(CONSUMERS):
        consumer = CONSUMERS[name]
        for _ in range(max_steps):
            done = _step(name, consumer)
            applied += done
            if done < SEALS_PER_STEP:
                break
    return applied


def _step(name: str, consumer: DerivedConsumer) -> int:
    with transaction.atomic():
        DerivedCursor.objects.get_or_create(name=name)
        qs = DerivedCursor.objects.filter(name=name)
        if connection.features.has_select_for_update:
            qs = qs.select_for_update()
        cursor = qs.get()
        seals = list(
            LedgerSeal.objects.filter(seq__gt=cursor.last_seq).order_by("seq")[:SEALS_PER_STEP]
        )
        if not seals:
            return 0
        consumer(seals)
        cursor.last_seq = seals[-1].seq
        cursor.updated_at = timezone.now()
        cursor.save(update_fields=["last_seq", "updated_at"])
        return len(seals)


def daily_counts_rebuild() -> int:
    """Recomputes the daily counts from the events themselves; gives the same numbers."""
    with transaction.atomic():
        qs = DerivedCursor.objects.filter(name="daily_counts")
        DerivedCursor.objects.get_or_create(name="daily_counts")
        if connection.features.has_select_for_update:
            qs = qs.select_for_update()
        cursor = qs.get()
        head = LedgerSeal.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        EventDailyCount.objects.all().delete()
        totals: dict[tuple[int, date, str], list[int]] = defaultdict(lambda: [0, 0])
        rows = (
            Event.objects.filter(
                batch_id__in=LedgerSeal.objects.filter(seq__lte=head).values("batch_id")
            )
            .annotate(day=TruncDate("ts"))
            .values("agent_id", "day", "type")
            .annotate(n=Count("id"), b=Sum("size_bytes"))
        )
        for row in rows:
            totals[(row["agent_id"], row["day"], row["type"])] = [row["n"], row["b"] or 0]
        EventDailyCount.objects.bulk_create(
            [
                EventDailyCount(agent_id=a, day=d, type=t, events=n, bytes=b)
                for (a, d, t), (n, b) in totals.items()
            ],
            batch_size=2000,
        )
        cursor.last_seq = head
        cursor.updated_at = timezone.now()
        cursor.save(update_fields=["last_seq", "updated_at"])
        return len(totals)
