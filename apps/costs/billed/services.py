"""Writes for Anthropic's billed cost: the pull that replaces whole days, and its status row."""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.costs.billed.client import (
    NOT_CONFIGURED,
    AdminApiError,
    BilledRow,
    UsageRow,
    admin_api_enabled,
    billed_costs_fetch,
    usage_fetch,
)
from apps.costs.models import (
    AnthropicBilledCost,
    AnthropicBilledUsage,
    AnthropicCostPull,
    PullStatus,
    PullTrigger,
)

logger = logging.getLogger(__name__)

# Two pulls replacing overlapping days would otherwise interleave their deletes and inserts;
# the unique constraint would then fail one of them rather than double the bill.
PULL_LOCK_KEY = 0x0A17_C057


class PullNotConfigured(Exception):
    message = NOT_CONFIGURED


@dataclass(frozen=True)
class PullRange:
    since: date
    until: date  # exclusive


def pull_range_default(*, today: date | None = None, days: int) -> PullRange:
    """The last `days` whole UTC days and today so far (the API restates recent days)."""
    today = today or timezone.now().date()
    return PullRange(since=today - timedelta(days=days), until=today + timedelta(days=1))


def anthropic_costs_pull_request(*, by: Any, since: date, until: date) -> AnthropicCostPull:
    """A queued pull, run by a worker after commit (the "Pull now" button)."""
    if not admin_api_enabled():
        raise PullNotConfigured()
    pull = AnthropicCostPull.objects.create(
        trigger=PullTrigger.BUTTON, requested_by=by, since=since, until=until
    )
    from apps.costs.tasks import anthropic_costs_pull_task

    transaction.on_commit(lambda: anthropic_costs_pull_task.delay(pull.pk))
    return pull


def anthropic_costs_pull(
    *, since: date, until: date, trigger: str, by: Any = None
) -> AnthropicCostPull | None:
    """Pulls and replaces billed cost for [since, until) now; None when no key is set."""
    if not admin_api_enabled():
        return None
    pull = AnthropicCostPull.objects.create(
        trigger=trigger, requested_by=by, since=since, until=until
    )
    return anthropic_costs_pull_run(pull_id=pull.pk)


def anthropic_costs_pull_run(*, pull_id: int) -> AnthropicCostPull | None:
    """Claims a queued pull and runs it: fetch every page first, then replace the days in one
    transaction, so a failure halfway leaves the previous figures in place."""
    now = timezone.now()
    claimed = AnthropicCostPull.objects.filter(pk=pull_id, status=PullStatus.QUEUED).update(
        status=PullStatus.RUNNING, started_at=now
    )
    if not claimed:  # gone, or another worker has it
        return None
    pull = AnthropicCostPull.objects.get(pk=pull_id)
    pages = 0

    def count_page() -> None:
        nonlocal pages
        pages += 1

    try:
        rows = list(billed_costs_fetch(since=pull.since, until=pull.until, on_page=count_page))
        usage = list(usage_fetch(since=pull.since, until=pull.until, on_page=count_page))
        written, usage_written = billed_costs_replace(pull=pull, rows=rows, usage=usage)
    except AdminApiError as exc:
        logger.warning("anthropic cost pull %s failed: %s", pull.pk, exc.message)
        pull.status = PullStatus.FAILED
        pull.message = exc.message
        pull.http_status = exc.status
        pull.pages = pages
        pull.finished_at = timezone.now()
        pull.save(update_fields=["status", "message", "http_status", "pages", "finished_at"])
        return pull
    except Exception:
        pull.status = PullStatus.FAILED
        pull.message = "The pull failed unexpectedly; the error is in opsdash's log."
        pull.finished_at = timezone.now()
        pull.save(update_fields=["status", "message", "finished_at"])
        raise
    pull.status = PullStatus.SUCCEEDED
    pull.rows = written
    pull.usage_rows = usage_written
    pull.pages = pages
    pull.billed_usd = sum((r.amount for r in rows if r.currency == "USD"), Decimal(0))
    pull.message = ""
    pull.finished_at = timezone.now()
    pull.save(
        update_fields=[
            "status",
            "rows",
            "usage_rows",
            "pages",
            "billed_usd",
            "message",
            "finished_at",
        ]
    )
    return pull


def billed_costs_replace(
    *, pull: AnthropicCostPull, rows: list[BilledRow], usage: list[UsageRow] | None = None
) -> tuple[int, int]:
    """Replaces every billed cost and usage row of the pull's days with `rows` and `usage`: a
    restated day is replaced, never added to. Rows the API splits finer than our cell (none
    today) are summed. Returns the cost and usage rows written."""
    usage = usage or []
    cells: defaultdict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    list_amounts: defaultdict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for row in rows:
        if not pull.since <= row.day < pull.until:
            raise AdminApiError(
                f"The Admin API sent cost for {row.day}, outside the days asked for "
                f"({pull.since} to {pull.until - timedelta(days=1)})."
            )
        key = (row.day, row.workspace_id, row.model, row.api_key_id, row.cost_type, row.currency)
        cells[key] += row.amount
        list_amounts[key] += row.list_amount
    tokens: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    requests: dict[tuple[Any, ...], int | None] = {}
    for u in usage:
        if not pull.since <= u.day < pull.until:
            raise AdminApiError(
                f"The Admin API sent usage for {u.day}, outside the days asked for."
            )
        cell = (u.day, u.workspace_id, u.model, u.api_key_id, u.service_tier)
        counts = tokens[cell]
        for i, n in enumerate(
            (
                u.uncached_input_tokens,
                u.output_tokens,
                u.cache_write_5m_tokens,
                u.cache_write_1h_tokens,
                u.cache_read_tokens,
            )
        ):
            counts[i] += n
        if u.requests is not None:
            requests[cell] = (requests.get(cell) or 0) + u.requests
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PULL_LOCK_KEY])
        AnthropicBilledCost.objects.filter(day__gte=pull.since, day__lt=pull.until).delete()
        AnthropicBilledCost.objects.bulk_create(
            AnthropicBilledCost(
                day=day,
                workspace_id=workspace,
                model=model,
                api_key_id=key_id,
                cost_type=cost_type,
                currency=currency,
                amount=amount,
                list_amount=list_amounts[(day, workspace, model, key_id, cost_type, currency)],
                pull=pull,
            )
            for (day, workspace, model, key_id, cost_type, currency), amount in cells.items()
        )
        AnthropicBilledUsage.objects.filter(day__gte=pull.since, day__lt=pull.until).delete()
        AnthropicBilledUsage.objects.bulk_create(
            AnthropicBilledUsage(
                day=key[0],
                workspace_id=key[1],
                model=key[2],
                api_key_id=key[3],
                service_tier=key[4],
                uncached_input_tokens=counts[0],
                output_tokens=counts[1],
                cache_write_5m_tokens=counts[2],
                cache_write_1h_tokens=counts[3],
                cache_read_tokens=counts[4],
                requests=requests.get(key),
                pull=pull,
            )
            for key, counts in tokens.items()
        )
    return len(cells), len(tokens)
