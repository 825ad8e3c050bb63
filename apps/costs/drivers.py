"""Cost drivers besides inference and cloud bills, as the article names them: audit-log storage
(bytes stored x USD per GB-month) and downstream tool / API calls (calls x USD per call, unless
the tool_call reported its own cost_usd, which is kept as it is).

Both are estimates from our own counts and FinOps' rates (CostDriverRate); neither comes from a
bill. Tool calls are counted per agent, day and tool by a ledger consumer (the same cursor
mechanism as the per-day event counts), so a batch applied twice counts once.
"""

import calendar
import fnmatch
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, TruncDate

from apps.audit.models import Event, EventType, LedgerSeal
from apps.costs.models import CostDriverRate, DriverKind, ToolCallDailyCount

TOOL_CALLS_CONSUMER = "tool_call_counts"
UNNAMED_TOOL = "(unnamed)"
# Cloud providers bill storage per GiB (2^30 bytes) and call it GB; so do we.
BYTES_PER_GB = Decimal(2**30)


def tool_call_totals(events: QuerySet[Event], *by: str) -> QuerySet[Event, dict[str, Any]]:
    """The tool_call events grouped by `by` and the tool (`tool`, None if the event names
    none): `n` calls, `n_reported` of them with their own cost_usd, and `usd` the sum of those
    (None if none)."""
    reported = Cast(
        KeyTextTransform("cost_usd", "data"), DecimalField(max_digits=20, decimal_places=9)
    )
    return (
        events.annotate(tool=KeyTextTransform("tool", "data"), reported=reported)
        .values(*by, "tool")
        .annotate(n=Count("pk"), n_reported=Count("reported"), usd=Sum("reported"))
        .order_by()
    )


def tool_call_counts_apply(seals: Sequence[LedgerSeal]) -> None:
    """Adds the tool_call events of newly sealed batches to the per-agent, day and tool counts."""
    rows = tool_call_totals(
        Event.objects.filter(
            batch_id__in=[s.batch_id for s in seals], type=EventType.TOOL_CALL
        ).annotate(day=TruncDate("ts")),
        "agent_id",
        "day",
    )
    increments: dict[tuple[int, date, str], list[Any]] = defaultdict(lambda: [0, 0, Decimal(0)])
    for row in rows:
        # The ingest schema requires a tool name (1 to 200 characters); old rows may lack one.
        counts = increments[(row["agent_id"], row["day"], row["tool"] or UNNAMED_TOOL)]
        counts[0] += row["n"]
        counts[1] += row["n_reported"]
        counts[2] += row["usd"] or Decimal(0)
    if not increments:
        return
    existing = {
        (c.agent_id, c.day, c.tool): c
        for c in ToolCallDailyCount.objects.filter(
            agent_id__in={k[0] for k in increments}, day__in={k[1] for k in increments}
        )
    }
    to_create: list[ToolCallDailyCount] = []
    to_update: list[ToolCallDailyCount] = []
    for (agent_id, day, tool_name), (calls, reported_calls, usd) in increments.items():
        count = existing.get((agent_id, day, tool_name))
        if count is None:
            to_create.append(
                ToolCallDailyCount(
                    agent_id=agent_id,
                    day=day,
                    tool=tool_name,
                    calls=calls,
                    reported_calls=reported_calls,
                    reported_usd=usd,
                )
            )
        else:
            count.calls += calls
            count.reported_calls += reported_calls
            count.reported_usd += usd
            to_update.append(count)
    ToolCallDailyCount.objects.bulk_create(to_create)
    ToolCallDailyCount.objects.bulk_update(to_update, ["calls", "reported_calls", "reported_usd"])


@dataclass(frozen=True)
class ToolCallsCost:
    usd: Decimal  # of the priced calls: reported costs as they are, the rest at the rate
    priced: int
    unpriced: int  # calls with neither a reported cost nor a rate that day


@dataclass(frozen=True)
class DriverRates:
    """Every driver rate, looked up per day without a query per day."""

    log_storage: list[CostDriverRate]  # newest first
    tool_call: dict[str, list[CostDriverRate]]  # by pattern, newest first

    def log_storage_rate(self, day: date) -> Decimal | None:
        for rate in self.log_storage:
            if rate.effective_from <= day:
                return rate.usd_rate
        return None

    def tool_call_rate(self, tool: str, day: date) -> Decimal | None:
        """The rate of the most specific pattern that matches the tool and has a rate that
        day: the exact name first, then the longest glob."""
        for pattern in self._patterns_for(tool):
            for rate in self.tool_call[pattern]:
                if rate.effective_from <= day:
                    return rate.usd_rate
        return None

    def tool_calls_cost(
        self, tool: str, day: date, *, calls: int, reported_calls: int, reported_usd: Decimal
    ) -> ToolCallsCost:
        """What a day's calls of one tool cost: a reported cost_usd is kept, the other calls
        are priced at the tool's rate that day, or left unpriced when it has none."""
        unreported = calls - reported_calls
        if not unreported:
            return ToolCallsCost(usd=reported_usd, priced=calls, unpriced=0)
        rate = self.tool_call_rate(tool, day)
        if rate is None:
            return ToolCallsCost(usd=reported_usd, priced=reported_calls, unpriced=unreported)
        return ToolCallsCost(usd=reported_usd + rate * unreported, priced=calls, unpriced=0)

    def _patterns_for(self, tool: str) -> list[str]:
        exact = [tool] if tool in self.tool_call else []
        globs = sorted(
            (p for p in self.tool_call if p != tool and fnmatch.fnmatchcase(tool, p)),
            key=lambda p: (-len(p.replace("*", "")), p),
        )
        return exact + globs


def driver_rates() -> DriverRates:
    log_storage: list[CostDriverRate] = []
    tool_call: dict[str, list[CostDriverRate]] = defaultdict(list)
    for rate in CostDriverRate.objects.order_by("-effective_from", "-id"):
        if rate.kind == DriverKind.LOG_STORAGE:
            log_storage.append(rate)
        else:
            tool_call[rate.tool].append(rate)
    return DriverRates(log_storage=log_storage, tool_call=dict(tool_call))


def log_storage_day_cost(stored_bytes: int, rate_per_gb_month: Decimal, day: date) -> Decimal:
    """One day's accrual of a GB-month price: what is stored that day x rate / days in the
    month (a 30-day month and a 31-day month bill the same GB-month)."""
    days = calendar.monthrange(day.year, day.month)[1]
    return Decimal(stored_bytes) / BYTES_PER_GB * rate_per_gb_month / days
