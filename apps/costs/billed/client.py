"""Anthropic's Admin API through the `anthropic` SDK: billed cost per day, and API key status.

The analytics cost endpoint (`client.beta.organization.analytics.cost`, beta header
analytics-usage-cost-2026-08-24) is the one that can group cost by API key, next to workspace,
model and cost type, so billed cost per key comes straight from it; the legacy cost report
cannot group by key. Every failure becomes an AdminApiError whose message a FinOps person can
act on.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

import anthropic
from django.conf import settings

# The endpoint accepts at most 31 days per request.
MAX_DAYS_PER_REQUEST = 31
PAGE_LIMIT = 1000
GROUP_BY = ["workspace_id", "model", "api_key_id", "cost_type"]
# Service tier, so batch tokens are priced with the batch discount.
USAGE_GROUP_BY = ["workspace_id", "model", "api_key_id", "service_tier"]
# The endpoint refuses a start before this, or more than 365 days ago.
FIRST_DAY = date(2026, 1, 1)
LOOKBACK_DAYS = 364  # a whole UTC day that starts within the last 365 days
# What AnthropicBilledCost.amount stores: 12 decimal places of a cent.
AMOUNT_QUANTUM = Decimal("1e-14")


class AdminApiError(Exception):
    """The Admin API could not answer; `message` says what to do, `status` is the HTTP status
    (None when nothing came back)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class AdminApiNotConfigured(AdminApiError):
    pass


@dataclass(frozen=True)
class BilledRow:
    """One row of the cost endpoint, in currency units (the API gives cents)."""

    day: date
    workspace_id: str
    model: str
    api_key_id: str
    cost_type: str
    currency: str
    amount: Decimal
    list_amount: Decimal


@dataclass(frozen=True)
class UsageRow:
    """One row of the usage endpoint: tokens in Anthropic's meaning (input excludes cache)."""

    day: date
    workspace_id: str
    model: str
    api_key_id: str
    service_tier: str
    uncached_input_tokens: int
    output_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    cache_read_tokens: int
    requests: int | None


def admin_api_enabled() -> bool:
    return bool(settings.ANTHROPIC_ADMIN_KEY)


NOT_CONFIGURED = (
    "The Anthropic Admin API is off: opsdash has no ANTHROPIC_ADMIN_KEY. An admin can set it "
    "(or ANTHROPIC_ADMIN_KEY_FILE) to an Admin API key (sk-ant-admin…, created by an "
    "organization admin in the Claude Console) to pull billed cost daily."
)


def earliest_day(today: date) -> date:
    """The first UTC day the cost endpoint can still report."""
    return max(FIRST_DAY, today - timedelta(days=LOOKBACK_DAYS))


def _client() -> anthropic.Anthropic:
    if not admin_api_enabled():
        raise AdminApiNotConfigured(NOT_CONFIGURED)
    return anthropic.Anthropic(
        api_key=settings.ANTHROPIC_ADMIN_KEY,
        base_url=settings.ANTHROPIC_ADMIN_BASE_URL or None,
        timeout=settings.ANTHROPIC_ADMIN_TIMEOUT_SECONDS,
        max_retries=settings.ANTHROPIC_ADMIN_MAX_RETRIES,
    )


def cents_to_units(raw: str) -> Decimal:
    """'1234.5678' cents → Decimal('12.345678'), exactly, or AdminApiError."""
    try:
        cents = Decimal(raw)
    except (InvalidOperation, TypeError) as exc:
        raise AdminApiError(f"The Admin API sent an amount that is not a number: {raw!r}.") from exc
    if not cents.is_finite():
        raise AdminApiError(f"The Admin API sent an amount that is not a number: {raw!r}.")
    with localcontext() as ctx:
        ctx.prec = 60  # scaleb and quantize below must not round
        units = cents.scaleb(-2)
        stored = units.quantize(AMOUNT_QUANTUM)
    if stored != units:
        raise AdminApiError(
            f"The Admin API sent an amount with more than 12 decimal places of a cent ({raw!r}); "
            "opsdash stores billed cost exactly and would have to round it."
        )
    return units


def _detail(exc: anthropic.APIStatusError) -> str:
    body: dict[str, Any] = exc.body if isinstance(exc.body, dict) else {}
    error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    detail = ": ".join(str(p) for p in (error.get("type"), error.get("message")) if p)
    return f" ({detail[:300]})" if detail else ""


def _translate(exc: Exception) -> AdminApiError:
    if isinstance(exc, anthropic.APITimeoutError):
        return AdminApiError(
            f"The Anthropic Admin API did not answer within "
            f"{settings.ANTHROPIC_ADMIN_TIMEOUT_SECONDS:g} s; the next pull will try again."
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return AdminApiError(
            "opsdash could not reach the Anthropic Admin API. Check the network (or "
            "ANTHROPIC_ADMIN_BASE_URL); the next pull will try again."
        )
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        detail = _detail(exc)
        if status == 401:
            message = (
                f"The Anthropic Admin API refused ANTHROPIC_ADMIN_KEY (HTTP 401){detail}. "
                "An admin should check it is an Admin API key (sk-ant-admin…) that is still active."
            )
        elif status == 403:
            message = (
                f"ANTHROPIC_ADMIN_KEY may not read cost (HTTP 403){detail}. It needs to be an "
                "Admin API key, or a key with the read:analytics scope."
            )
        elif status == 429:
            message = (
                f"The Anthropic Admin API is rate-limiting opsdash (HTTP 429) after "
                f"{settings.ANTHROPIC_ADMIN_MAX_RETRIES} retries; try again in a few minutes."
            )
        elif status >= 500:
            message = (
                f"The Anthropic Admin API had an error (HTTP {status}){detail} after "
                f"{settings.ANTHROPIC_ADMIN_MAX_RETRIES} retries; the next pull will try again."
            )
        else:
            message = f"The Anthropic Admin API refused the request (HTTP {status}){detail}."
        return AdminApiError(message, status=status)
    raise exc


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def billed_costs_fetch(*, since: date, until: date, on_page: Any = None) -> Iterator[BilledRow]:
    """Billed cost per UTC day in [since, until), per workspace, model, API key and cost type,
    every page of every ≤31-day request. `on_page()` is called once per page read."""
    client = _client()
    for item in _report_items(
        client.beta.organization.analytics.cost.list, GROUP_BY, since, until, on_page
    ):
        yield _billed_row(item)


def usage_fetch(*, since: date, until: date, on_page: Any = None) -> Iterator[UsageRow]:
    """Tokens per UTC day in [since, until), per workspace, model, API key and service tier."""
    client = _client()
    for item in _report_items(
        client.beta.organization.analytics.usage.list, USAGE_GROUP_BY, since, until, on_page
    ):
        day = _bucket_day(item)
        group, usage = item.group, item.usage
        yield UsageRow(
            day=day,
            workspace_id=group.workspace_id or "",
            model=group.model or "",
            api_key_id=group.api_key_id or "",
            service_tier=group.service_tier or "",
            uncached_input_tokens=usage.uncached_input_tokens,
            output_tokens=usage.output_tokens,
            cache_write_5m_tokens=usage.cache_creation.ephemeral_5m_input_tokens,
            cache_write_1h_tokens=usage.cache_creation.ephemeral_1h_input_tokens,
            cache_read_tokens=usage.cache_read_input_tokens,
            requests=usage.requests,
        )


def _report_items(
    list_fn: Any, group_by: list[str], since: date, until: date, on_page: Any
) -> Iterator[Any]:
    """Every item of every page of ≤31-day daily requests, checked to lie in its request."""
    start = since
    try:
        while start < until:
            end = min(until, start + timedelta(days=MAX_DAYS_PER_REQUEST))
            first = list_fn(
                starting_at=_day_start(start),
                ending_at=_day_start(end),
                time_bucket_width="1d",
                group_by=list(group_by),
                order_by="time",
                order="asc",
                limit=PAGE_LIMIT,
            )
            for page in first.iter_pages():
                if on_page is not None:
                    on_page()
                for item in page.data:
                    day = _bucket_day(item)
                    if not start <= day < end:
                        raise AdminApiError(
                            f"The Admin API sent a row for {day}, outside the days asked "
                            f"for ({start} to {end - timedelta(days=1)}); nothing was replaced."
                        )
                    yield item
            start = end
    except anthropic.AnthropicError as exc:
        raise _translate(exc) from exc


def _bucket_day(item: Any) -> date:
    starting = item.starting_at.astimezone(UTC)
    if starting.time() != time.min or item.ending_at - item.starting_at != timedelta(days=1):
        raise AdminApiError(
            f"The Admin API sent a row for {item.starting_at} to {item.ending_at}, not one UTC day."
        )
    return starting.date()


def _billed_row(item: Any) -> BilledRow:
    group = item.group
    return BilledRow(
        day=_bucket_day(item),
        workspace_id=group.workspace_id or "",
        model=group.model or "",
        api_key_id=group.api_key_id or "",
        cost_type=group.cost_type or "",
        currency=item.cost.currency,
        amount=cents_to_units(item.cost.amount),
        list_amount=cents_to_units(item.cost.list_amount),
    )


def api_key_status_set(*, api_key_id: str, active: bool) -> str:
    """Sets an API key active or inactive in Anthropic's organization; returns the status the
    API reports afterwards. An inactive key is refused by the Messages API at once."""
    try:
        key = _client().organization.api_keys.update(
            api_key_id, status="active" if active else "inactive"
        )
    except anthropic.AnthropicError as exc:
        raise _translate(exc) from exc
    return str(key.status)
