"""Price rows and llm_call builders for the cost tests; figures are worked out by hand."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from apps.audit.canonical import encode_json
from apps.audit.models import EventSource
from apps.audit.services.ingest import ALL_TYPES, agent_lookup_cache, event_batch_ingest
from apps.costs.models import ModelPrice
from tests.conftest import event
from tests.costs.admin_api import admin_api, admin_on  # noqa: F401 (fixtures)

T0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)


def make_price(
    model: str = "test-sonnet*",
    *,
    effective_from: datetime = T0,
    input: str = "3",
    output: str = "15",
    write_5m: str = "3.75",
    write_1h: str = "6",
    read: str = "0.30",
    batch_discount: str = "0.5",
    provider: str = "anthropic",
    **extra: Any,
) -> ModelPrice:
    return ModelPrice.objects.create(
        provider=provider,
        model=model,
        effective_from=effective_from,
        input_usd_per_mtok=Decimal(input),
        output_usd_per_mtok=Decimal(output),
        cache_write_5m_usd_per_mtok=Decimal(write_5m),
        cache_write_1h_usd_per_mtok=Decimal(write_1h),
        cache_read_usd_per_mtok=Decimal(read),
        batch_discount=Decimal(batch_discount),
        **extra,
    )


def call(
    model: str = "test-sonnet-20261101",
    *,
    ts: datetime,
    agent: str = "triage-bot",
    action_id: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    """An llm_call; token fields default to zero so each test names the ones it prices."""
    payload: dict[str, Any] = {
        "model": model,
        "input_tokens": 0,
        "output_tokens": 0,
        "latency_ms": 900,
    }
    payload.update(data)
    fields = {"action_id": action_id} if action_id else {}
    return event(agent, "llm_call", payload, ts=ts, **fields)


def ingest(*items: dict[str, Any]) -> Any:
    """One batch through the real ingest (as an import, so any agent and type may write)."""
    return event_batch_ingest(
        items=[encode_json(i) for i in items],
        source=EventSource.IMPORT,
        allowed_types=ALL_TYPES,
        agents_by_slug=agent_lookup_cache(),
    )


@pytest.fixture
def finops(make_person: Any) -> Any:
    return make_person("fiona", "finops")


@pytest.fixture
def approver(make_person: Any) -> Any:
    return make_person("ada", "approver")
