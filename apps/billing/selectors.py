"""Reads for the billing pages."""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth

from apps.billing.models import (
    AllocationMethod,
    AllocationRun,
    BillingImport,
    CostAllocation,
    CostLineItem,
)

IMPORTS_SHOWN = 100


def billing_imports_recent(*, limit: int = IMPORTS_SHOWN) -> QuerySet[BillingImport]:
    # The error report can be 1,000 entries: the list never loads it.
    return (
        BillingImport.objects.select_related("uploaded_by")
        .defer("row_errors", "periods")
        .order_by("-created_at", "-id")[:limit]
    )


# ---------------------------------------------------------------------------------------------
# Chargeback

CENT = Decimal("0.01")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """'2026-10' → [2026-10-01, 2026-11-01) UTC; ValueError for anything else."""
    year, _, mon = month.partition("-")
    if len(year) != 4 or len(mon) != 2:
        raise ValueError(month)
    start = datetime(int(year), int(mon), 1, tzinfo=UTC)
    after = start.year * 12 + start.month
    return start, datetime(after // 12, after % 12 + 1, 1, tzinfo=UTC)


def chargeback_months() -> list[str]:
    """Months that have line items, newest first ('2026-10')."""
    months = (
        CostLineItem.objects.annotate(m=TruncMonth("charge_period_start", tzinfo=UTC))
        .values_list("m", flat=True)
        .distinct()
        .order_by("-m")
    )
    return [f"{m:%Y-%m}" for m in months]


def cents_split(values: list[Decimal], total: Decimal) -> list[Decimal]:
    """`values` to the cent, adding up to `total` rounded half-up to the cent: each is rounded
    down and the leftover cents go to the largest remainders (the earlier one on a tie)."""
    target = total.quantize(CENT, rounding=ROUND_HALF_UP)
    floors = [v.quantize(CENT, rounding=ROUND_FLOOR) for v in values]
    leftover = int((target - sum(floors, Decimal(0))) / CENT)
    order = sorted(range(len(values)), key=lambda i: (-(values[i] - floors[i]), i))
    for i in order[: max(leftover, 0)]:
        floors[i] += CENT
    return floors


@dataclass
class ChargebackRow:
    team_slug: str | None  # None: unallocated
    team_name: str
    currency: str
    billed: Decimal = Decimal(0)
    effective: Decimal = Decimal(0)
    llm_usd: Decimal | None = None
    rules: list[str] = field(default_factory=list)
    exact_billed: Decimal = Decimal(0)
    exact_effective: Decimal = Decimal(0)
    rule_parts: list[tuple[str, Decimal]] = field(default_factory=list)


@dataclass
class Chargeback:
    month: str
    rows: list[ChargebackRow]
    # currency → (billed, effective) of the bills, to the cent
    totals: dict[str, tuple[Decimal, Decimal]]
    llm_total: Decimal
    llm_unpriced_calls: int
    # Line items of the month without allocations (an import or recompute still running).
    unallocated_items: int


def chargeback(month: str) -> Chargeback:
    """Per team: the cloud cost allocated to it (billed and effective, per currency) and its
    estimated LLM cost, for line items charged in `month`. Each column is rounded to the cent
    so that the teams and the unallocated line add up to the bills' total."""
    from apps.costs.models import LlmUsage
    from apps.fleet.models import Team

    start, end = month_bounds(month)
    teams = {t.pk: t for t in Team.objects.all()}
    in_month = {"charge_period_start__gte": start, "charge_period_start__lt": end}
    rows: dict[tuple[int | None, str], ChargebackRow] = {}

    def row(team_id: int | None, currency: str) -> ChargebackRow:
        key = (team_id, currency)
        if key not in rows:
            team = teams.get(team_id) if team_id is not None else None
            rows[key] = ChargebackRow(
                team_slug=team.slug if team else None,
                team_name=(team.name or team.slug) if team else "Unallocated",
                currency=currency,
            )
        return rows[key]

    bills = (
        CostLineItem.objects.filter(**in_month)
        .values("billing_currency")
        .annotate(b=Sum("billed_cost"), e=Sum("effective_cost"))
        .order_by("billing_currency")
    )
    exact_totals = {r["billing_currency"]: (r["b"], r["e"]) for r in bills}
    for currency in exact_totals:
        row(None, currency)  # the unallocated line is always shown
    shares = (
        CostAllocation.objects.filter(**in_month)
        .values("team_id", "billing_currency")
        .annotate(b=Sum("billed_cost"), e=Sum("effective_cost"))
    )
    for share in shares:
        r = row(share["team_id"], share["billing_currency"])
        r.exact_billed, r.exact_effective = share["b"], share["e"]
    methods = dict(AllocationMethod.choices)
    produced = (
        CostAllocation.objects.filter(**in_month)
        .values_list("team_id", "billing_currency", "rule_name", "method")
        .annotate(b=Sum("billed_cost"))
        .order_by("rule_name", "method")
    )
    for team_id, currency, rule_name, method, billed in produced:
        label = (
            f"{rule_name} ({methods.get(method, method).lower()})"
            if rule_name
            else "no rule matched"
        )
        row(team_id, currency).rule_parts.append((label, billed))
    llm = (
        LlmUsage.objects.filter(ts__gte=start, ts__lt=end)
        .values("team_id")
        .annotate(cost=Sum("cost_usd"), unpriced=Count("pk", filter=Q(cost_usd__isnull=True)))
    )
    llm_unpriced = 0
    for usage in llm:
        llm_unpriced += usage["unpriced"]
        if usage["cost"] is not None:
            row(usage["team_id"], "USD").llm_usd = usage["cost"].quantize(
                CENT, rounding=ROUND_HALF_UP
            )
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    for currency, (billed, effective) in exact_totals.items():
        same = [r for r in rows.values() if r.currency == currency]
        for r, b in zip(same, cents_split([r.exact_billed for r in same], billed), strict=True):
            r.billed = b
        for r, e in zip(
            same, cents_split([r.exact_effective for r in same], effective), strict=True
        ):
            r.effective = e
        for r in same:
            # Each rule's part of the team's billed cost, adding up to the figure shown.
            parts = cents_split([exact for _, exact in r.rule_parts], r.billed)
            r.rules = [
                f"{label}: {part}" for (label, _), part in zip(r.rule_parts, parts, strict=True)
            ]
        totals[currency] = (
            billed.quantize(CENT, rounding=ROUND_HALF_UP),
            effective.quantize(CENT, rounding=ROUND_HALF_UP),
        )
    missing = (
        CostLineItem.objects.filter(**in_month, allocations__isnull=True).count()
        if exact_totals
        else 0
    )
    ordered = sorted(
        rows.values(), key=lambda r: (r.team_slug is None, r.team_slug or "", r.currency)
    )
    return Chargeback(
        month=month,
        rows=ordered,
        totals=totals,
        llm_total=sum((r.llm_usd or Decimal(0) for r in ordered), Decimal(0)),
        llm_unpriced_calls=llm_unpriced,
        unallocated_items=missing,
    )


def allocation_runs_recent(limit: int = 5) -> QuerySet[AllocationRun]:
    return AllocationRun.objects.select_related("requested_by").order_by("-created_at", "-id")[
        :limit
    ]
