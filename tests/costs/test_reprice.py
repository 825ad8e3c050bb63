"""`manage.py price_llm_calls`: prices what has no usage row, reprices after a price change,
never touches a reported cost, and changes nothing the second time."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.costs.models import LlmUsage
from apps.costs.services import model_price_create
from apps.slo.models import SliFact
from tests.costs.conftest import T0, call, ingest, make_price

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("price_llm_calls", *args, stdout=out)
    return out.getvalue()


def costs() -> dict[str, tuple[Decimal | None, str]]:
    return {str(u.event_id): (u.cost_usd, u.cost_source) for u in LlmUsage.objects.all()}


PRICES = {
    "input_usd_per_mtok": Decimal("2"),
    "output_usd_per_mtok": Decimal("10"),
    "cache_write_5m_usd_per_mtok": Decimal("2.5"),
    "cache_write_1h_usd_per_mtok": Decimal("4"),
    "cache_read_usd_per_mtok": Decimal("0.2"),
}


def test_a_new_price_prices_stored_calls_and_a_second_run_changes_nothing(agent, finops):
    late = call("new-model", ts=T0 + timedelta(days=1), input_tokens=1000)
    early = call("new-model", ts=T0 - timedelta(days=1), input_tokens=1000)
    reported = call("new-model", ts=T0 + timedelta(days=1), input_tokens=1000, cost_usd="0.7")
    ingest(late, early, reported)
    assert costs()[late["id"]] == (None, "unpriced")
    model_price_create(
        by=finops,
        provider="anthropic",
        model="new-model",
        effective_from=T0,
        prices=PRICES,
        batch_discount=Decimal("0.5"),
    )
    out = run()
    assert out.startswith(
        "Examined 3 llm_calls: 0 usage rows written, 1 repriced, 2 unchanged; 1 have no price."
    )
    assert "unpriced: anthropic/new-model: 1 calls (2026-10-31 to 2026-10-31)" in out
    # 1,000 x 2 = 2,000 per million
    assert costs() == {
        late["id"]: (Decimal("0.002000000"), "price_table"),
        early["id"]: (None, "unpriced"),  # before the price's effective date
        reported["id"]: (Decimal("0.7"), "reported"),
    }
    assert run().startswith(
        "Examined 3 llm_calls: 0 usage rows written, 0 repriced, 3 unchanged; 1 have no price."
    )


def test_a_correction_reprices_the_calls_it_covers(agent, finops):
    wrong = make_price("fix-me*", input="30")
    item = call("fix-me-1", ts=T0, input_tokens=1000)
    ingest(item)
    assert costs()[item["id"]] == (Decimal("0.030000000"), "price_table")
    fixed = model_price_create(
        by=finops,
        provider="anthropic",
        model="fix-me*",
        effective_from=T0,
        prices=PRICES | {"input_usd_per_mtok": Decimal("3")},
        batch_discount=Decimal("0.5"),
        corrects=wrong,
        note="Typo: 3, not 30.",
    )
    assert "1 repriced" in run("--since", "2026-10-01")
    row = LlmUsage.objects.get(event_id=item["id"])
    assert (row.cost_usd, row.price_id) == (Decimal("0.003000000"), fixed.pk)


def test_calls_stored_before_costs_existed_get_their_rows(agent):
    make_price()
    items = [call(ts=T0, output_tokens=100), call(ts=T0 + timedelta(hours=1), output_tokens=200)]
    ingest(*items)
    LlmUsage.objects.all().delete()  # as on a deployment upgraded from before this app
    assert "2 usage rows written" in run()
    # 100 x 15 = 1,500 and 200 x 15 = 3,000 per million
    assert sorted(c for c, _ in costs().values()) == [
        Decimal("0.001500000"),
        Decimal("0.003000000"),
    ]
    assert "0 usage rows written, 0 repriced, 2 unchanged" in run()


def test_since_limits_the_calls_examined(agent):
    make_price()
    ingest(call(ts=T0, output_tokens=1), call(ts=T0 + timedelta(days=2), output_tokens=1))
    LlmUsage.objects.all().delete()
    assert run("--since", "2026-11-02").startswith("Examined 1 llm_calls: 1 usage rows written")


def test_a_bad_since_date_is_a_clear_command_error():
    with pytest.raises(CommandError, match="--since 'last week' is not a date: use YYYY-MM-DD"):
        call_command("price_llm_calls", "--since", "last week")


def test_repricing_moves_the_actions_cost_fact(agent, finops):
    from tests.slo.test_facts import apply, proposal

    ingest(
        proposal("k9", T0, incident=None),
        call("later-priced", ts=T0, action_id="k9", input_tokens=1000),
    )
    apply()
    assert not SliFact.objects.filter(kind="cost_per_action", subject="k9").exists()
    model_price_create(
        by=finops,
        provider="anthropic",
        model="later-priced",
        effective_from=T0,
        prices=PRICES,
        batch_discount=Decimal("0"),
    )
    run()
    fact = SliFact.objects.get(kind="cost_per_action", subject="k9")
    assert fact.value == Decimal("0.002")  # 1,000 x 2 per million
