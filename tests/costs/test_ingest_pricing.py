"""llm_calls are priced in the ingest transaction, through the real ingest API; every cost is
worked out by hand in the comments (prices in USD per million tokens)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import Event
from apps.costs.models import LlmUsage
from apps.costs.selectors import UnpricedModel, unpriced_models
from tests.conftest import post_batch
from tests.costs.conftest import T0, call, ingest, make_price

pytestmark = pytest.mark.django_db

# input 1,000 · output 2,000 · cache writes 3,000 of which 1,000 with a 1-hour TTL · reads 4,000
TOKENS = {
    "input_tokens": 1000,
    "output_tokens": 2000,
    "cache_creation_input_tokens": 3000,
    "cache_creation_1h_input_tokens": 1000,
    "cache_read_input_tokens": 4000,
}
# 1,000 x 3 + 2,000 x 15 + 2,000 x 3.75 + 1,000 x 6 + 4,000 x 0.30
#   = 3,000 + 30,000 + 7,500 + 6,000 + 1,200 = 47,700 USD per million = 0.0477 USD
FULL_COST = Decimal("0.047700000")


def usage(item: dict) -> LlmUsage:
    return LlmUsage.objects.get(event_id=item["id"])


def test_a_call_is_priced_at_every_token_class_in_the_ingest_transaction(agent_client, agent):
    price = make_price()
    item = call(ts=T0 + timedelta(hours=1), action_id="act-1", **TOKENS)
    response = post_batch(agent_client, [item])
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    row = usage(item)
    assert (row.input_tokens, row.output_tokens) == (1000, 2000)
    assert (row.cache_write_5m_tokens, row.cache_write_1h_tokens, row.cache_read_tokens) == (
        2000,
        1000,
        4000,
    )
    assert (row.cost_usd, row.cost_source, row.price_id) == (FULL_COST, "price_table", price.pk)
    assert (row.agent_id, row.team_id, row.action_id) == (agent.pk, agent.team_id, "act-1")


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        ({"input_tokens": 1_000_000}, "3"),  # input alone: 3 USD
        ({"output_tokens": 1_000_000}, "15"),
        ({"cache_creation_input_tokens": 1_000_000}, "3.75"),  # 5-minute writes
        (
            {"cache_creation_input_tokens": 1_000_000, "cache_creation_1h_input_tokens": 1_000_000},
            "6",  # all writes with a 1-hour TTL
        ),
        ({"cache_read_input_tokens": 1_000_000}, "0.3"),
        ({"input_tokens": 1}, "0.000003"),  # one token: 3 / 1e6
    ],
)
def test_each_token_class_has_its_own_rate(agent, tokens, expected):
    make_price()
    item = call(ts=T0, **tokens)
    assert ingest(item).accepted == 1
    assert usage(item).cost_usd == Decimal(expected)


def test_a_batch_api_call_gets_the_batch_discount_on_every_class(agent):
    make_price()
    item = call(ts=T0, batch=True, **TOKENS)
    ingest(item)
    # 47,700 x (1 - 0.5) = 23,850 per million
    assert usage(item).cost_usd == Decimal("0.023850000")
    assert usage(item).batch is True


def test_a_call_at_the_exact_moment_of_a_new_price_takes_the_new_price(agent):
    make_price(effective_from=T0, input="3")
    make_price(effective_from=T0 + timedelta(days=10), input="4")
    before = call(ts=T0 + timedelta(days=10) - timedelta(microseconds=1), input_tokens=1_000_000)
    exactly = call(ts=T0 + timedelta(days=10), input_tokens=1_000_000)
    first = call(ts=T0, input_tokens=1_000_000)
    ingest(before, exactly, first)
    assert usage(before).cost_usd == Decimal("3")
    assert usage(exactly).cost_usd == Decimal("4")
    assert usage(first).cost_usd == Decimal("3")


def test_a_call_before_the_first_price_is_unpriced_not_free(agent):
    make_price(effective_from=T0)
    early = call(ts=T0 - timedelta(seconds=1), input_tokens=500)
    ingest(early)
    row = usage(early)
    assert (row.cost_usd, row.cost_source, row.price_id) == (None, "unpriced", None)


def test_an_exact_model_name_beats_a_prefix(agent):
    make_price("test-sonnet*", input="3")
    make_price("test-sonnet-20261101", input="2.5")
    dated = call("test-sonnet-20261101", ts=T0, input_tokens=1_000_000)
    other = call("test-sonnet-20261201", ts=T0, input_tokens=1_000_000)
    ingest(dated, other)
    assert usage(dated).cost_usd == Decimal("2.5")
    assert usage(other).cost_usd == Decimal("3")


def test_the_provider_matches_whatever_its_case(agent):
    make_price()
    item = call(ts=T0, provider="Anthropic", input_tokens=1_000_000)
    ingest(item)
    assert (usage(item).provider, usage(item).cost_usd) == ("anthropic", Decimal("3"))


def test_an_unknown_model_is_stored_unpriced_and_listed(agent):
    make_price()
    items = [
        call("mystery-1", ts=T0 + timedelta(minutes=i), input_tokens=10, action_id="a")
        for i in range(2)
    ]
    items.append(call("other-llm", ts=T0, provider="acme", input_tokens=10))
    items.append(call(ts=T0, input_tokens=10))  # priced
    assert ingest(*items).accepted == 4
    assert LlmUsage.objects.filter(cost_source="unpriced").count() == 3
    assert LlmUsage.objects.filter(cost_usd=0).count() == 0
    assert unpriced_models() == [
        UnpricedModel("anthropic", "mystery-1", 2, T0, T0 + timedelta(minutes=1)),
        UnpricedModel("acme", "other-llm", 1, T0, T0),
    ]


def test_a_reported_cost_is_kept_even_when_the_table_has_a_price(agent_client):
    make_price()
    item = call(ts=T0, cost_usd="0.0123", **TOKENS)
    post_batch(agent_client, [item])
    row = usage(item)
    assert (row.cost_usd, row.cost_source, row.price_id) == (
        Decimal("0.0123"),
        "reported",
        None,
    )


def test_otel_input_tokens_include_the_cache_and_are_normalised(agent_client):
    make_price()
    anthropic = call(ts=T0, **TOKENS)
    # The same call as OpenTelemetry GenAI counts it: 1,000 + 3,000 + 4,000 = 8,000 input.
    otel = call(ts=T0, usage_convention="otel", **{**TOKENS, "input_tokens": 8000})
    assert post_batch(agent_client, [anthropic, otel]).json()["accepted"] == 2
    a, o = usage(anthropic), usage(otel)
    assert (o.input_tokens, o.cache_read_tokens, o.cache_write_5m_tokens) == (1000, 4000, 2000)
    assert (o.token_convention, a.token_convention) == ("otel", "anthropic")
    assert a.cost_usd == o.cost_usd == FULL_COST
    # The event itself is stored as sent: the audit log keeps the agent's numbers.
    assert Event.objects.get(id=otel["id"]).data["input_tokens"] == 8000


def test_inconsistent_token_counts_are_refused_per_item(agent_client):
    make_price()
    good = call(ts=T0, input_tokens=10)
    otel_short = call(
        ts=T0, usage_convention="otel", input_tokens=100, cache_read_input_tokens=4000
    )
    too_many_1h = call(ts=T0, cache_creation_input_tokens=10, cache_creation_1h_input_tokens=11)
    body = post_batch(agent_client, [good, otel_short, too_many_1h]).json()
    assert body["accepted"] == 1
    assert [(r["index"], list(r["errors"])) for r in body["rejected"]] == [
        (1, ["data.input_tokens"]),
        (2, ["data.cache_creation_1h_input_tokens"]),
    ]
    assert (
        "cannot be less than their sum (4000)"
        in body["rejected"][0]["errors"]["data.input_tokens"][0]
    )
    assert LlmUsage.objects.count() == 1


def test_a_retried_batch_creates_no_second_usage_row(agent_client):
    make_price()
    items = [call(ts=T0, input_tokens=1000), call(ts=T0, output_tokens=10)]
    assert post_batch(agent_client, items).json()["accepted"] == 2
    again = post_batch(agent_client, items).json()
    assert again == {"accepted": 0, "duplicates": 2, "rejected": []}
    assert LlmUsage.objects.count() == 2
    # 1,000 x 3 = 3,000 and 10 x 15 = 150 per million
    assert sorted(LlmUsage.objects.values_list("cost_usd", flat=True)) == [
        Decimal("0.000150000"),
        Decimal("0.003000000"),
    ]


def test_pricing_a_batch_costs_two_queries_whatever_its_size(agent):
    make_price()
    ingest(call(ts=T0, input_tokens=1))  # warm the agent and prepared statements

    def queries(n: int) -> int:
        with CaptureQueriesContext(connection) as ctx:
            result = ingest(*[call(ts=T0, input_tokens=i + 1) for i in range(n)])
        assert result.accepted == n
        return len(ctx.captured_queries)

    # One price query and one insert per batch: 200 calls cost what one call costs.
    assert queries(1) == queries(200)
    with CaptureQueriesContext(connection) as ctx:
        ingest(call(ts=T0, input_tokens=1))
    price_queries = [q for q in ctx.captured_queries if "costs_modelprice" in q["sql"]]
    assert len(price_queries) == 1
    assert LlmUsage.objects.count() == 203  # 1 + 1 + 200 + 1


def test_the_seeded_table_prices_the_demo_fleet_models(agent):
    # Anthropic's list prices as seeded (claude-sonnet-4-5: 3 / 15; haiku-4-5: 1 / 5;
    # opus-4-1: 15 / 75), for 1,000 input and 1,000 output tokens:
    items = [
        call("claude-sonnet-4-5", ts=T0, input_tokens=1000, output_tokens=1000),
        call("claude-sonnet-4-5-20250929", ts=T0, input_tokens=1000, output_tokens=1000),
        call("claude-haiku-4-5", ts=T0, input_tokens=1000, output_tokens=1000),
        call("claude-opus-4-1", ts=T0, input_tokens=1000, output_tokens=1000),
        call("claude-sonnet-5", ts=T0, input_tokens=1000, output_tokens=1000),
        # Not seeded: a prefix for Sonnet 5 would have priced 5.5 silently.
        call("claude-sonnet-5-5", ts=T0, input_tokens=1000, output_tokens=1000),
    ]
    ingest(*items)
    assert [usage(i).cost_usd for i in items] == [
        Decimal("0.018"),  # 3,000 + 15,000
        Decimal("0.018"),
        Decimal("0.006"),  # 1,000 + 5,000
        Decimal("0.09"),  # 15,000 + 75,000
        Decimal("0.012"),  # 2,000 + 10,000
        None,
    ]
