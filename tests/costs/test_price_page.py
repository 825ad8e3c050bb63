"""The price page: everyone with a role reads it, FinOps adds rows, nobody edits history."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from apps.costs.models import ModelPrice
from tests.costs.conftest import T0, call, ingest, make_price

pytestmark = pytest.mark.django_db

URL = "/costs/prices/"


def form(**overrides: Any) -> dict[str, str]:
    data = {
        "provider": "anthropic",
        "model": "test-haiku*",
        "effective_from": "2026-12-01 00:00",
        "input_usd_per_mtok": "1",
        "output_usd_per_mtok": "5",
        "cache_write_5m_usd_per_mtok": "1.25",
        "cache_write_1h_usd_per_mtok": "2",
        "cache_read_usd_per_mtok": "0.10",
        "batch_discount": "0.5",
        "source_url": "https://platform.claude.com/docs/en/about-claude/pricing",
        "note": "",
    }
    data.update(overrides)
    return data


def errors_of(response: Any) -> str:
    return response.content.decode()


def test_finops_adds_a_price_row(client, finops):
    client.force_login(finops)
    response = client.post(URL, form())
    assert response.status_code == 302, errors_of(response)
    row = ModelPrice.objects.get(model="test-haiku*")
    assert row.effective_from == datetime(2026, 12, 1, tzinfo=UTC)
    assert (row.input_usd_per_mtok, row.cache_read_usd_per_mtok, row.batch_discount) == (
        Decimal("1"),
        Decimal("0.1"),
        Decimal("0.5"),
    )
    assert row.created_by == finops
    page = client.get(URL).content.decode()
    assert "Added the price of anthropic/test-haiku* from 2026-12-01 00:00 UTC." in page
    assert "<code>test-haiku*</code>" in page


@pytest.mark.parametrize("role", ["viewer", "approver", "sre_lead"])
def test_other_roles_read_the_table_but_cannot_add(client, make_person, role):
    person = make_person(f"p-{role}", role)
    client.force_login(person)
    page = client.get(URL)
    assert page.status_code == 200
    assert "<code>claude-sonnet-4-5*</code>" in page.content.decode()  # the seeded table
    assert "Add a price" not in page.content.decode()
    assert client.post(URL, form()).status_code == 403
    assert not ModelPrice.objects.filter(model="test-haiku*").exists()


def test_people_without_a_role_and_anonymous_visitors_are_kept_out(client, outsider):
    assert client.get(URL).status_code == 302  # to the login page
    client.force_login(outsider)
    assert client.get(URL).status_code == 403
    assert client.post(URL, form()).status_code == 403


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"input_usd_per_mtok": "-1"}, "input_usd_per_mtok", "A price cannot be negative."),
        (
            {"output_usd_per_mtok": "3,50"},
            "output_usd_per_mtok",
            "Enter a price in USD such as 3 or 0.30 (a dot for decimals, no $).",
        ),
        (
            {"cache_read_usd_per_mtok": "NaN"},
            "cache_read_usd_per_mtok",
            "Enter a price in USD such as 3 or 0.30 (a dot for decimals, no $).",
        ),
        (
            {"input_usd_per_mtok": "0.0000001"},
            "input_usd_per_mtok",
            "At most 6 digits after the decimal point.",
        ),
        ({"batch_discount": "1.5"}, "batch_discount", "The discount is a share between 0 and 1."),
        ({"effective_from": "next tuesday"}, "effective_from", "Enter a date and time as"),
        ({"model": "x'; DROP TABLE costs_modelprice;--"}, "model", "A model name (letters"),
        ({"model": ""}, "model", "This field is required."),
        ({"provider": "Anthropic*"}, "provider", "A provider name in lower case"),
    ],
)
def test_hostile_input_gets_a_clear_error_and_saves_nothing(
    client, finops, overrides, field, message
):
    client.force_login(finops)
    before = ModelPrice.objects.count()
    response = client.post(URL, form(**overrides))
    assert response.status_code == 400
    page = response.content.decode()
    assert f'id="{field}-errors"' in page
    assert message.replace("'", "&#x27;") in page
    assert "Nothing was saved" in page
    assert ModelPrice.objects.count() == before


def test_a_second_price_for_the_same_model_and_moment_is_refused(client, finops):
    make_price("test-haiku*", effective_from=datetime(2026, 12, 1, tzinfo=UTC))
    client.force_login(finops)
    response = client.post(URL, form())
    assert response.status_code == 400
    assert (
        "anthropic/test-haiku* already has a price from 2026-12-01 00:00 UTC. Prices are never "
        "edited: choose a later date for a new price, or correct that row."
    ) in response.content.decode()
    assert ModelPrice.objects.filter(model="test-haiku*").count() == 1


def test_a_price_dated_before_the_newest_one_is_refused(client, finops):
    make_price("test-haiku*", effective_from=datetime(2026, 12, 1, tzinfo=UTC))
    client.force_login(finops)
    response = client.post(URL, form(effective_from="2026-11-15 12:00"))
    assert response.status_code == 400
    assert (
        "anthropic/test-haiku* has a price from 2026-12-01 00:00 UTC; a new row must start after "
        "it. To fix a past price, correct the row in force then."
    ) in response.content.decode()


def test_a_correction_keeps_the_date_needs_a_reason_and_supersedes_the_row(client, finops):
    wrong = make_price("test-haiku*", effective_from=datetime(2026, 12, 1, tzinfo=UTC), input="9")
    client.force_login(finops)
    no_reason = client.post(URL, form(corrects=str(wrong.pk)))
    assert no_reason.status_code == 400
    assert "Say why the price is corrected." in no_reason.content.decode()
    moved = client.post(URL, form(corrects=str(wrong.pk), effective_from="2026-12-02 00:00"))
    assert "A correction keeps the effective date of the row it corrects" in (
        moved.content.decode()
    )
    ok = client.post(URL, form(corrects=str(wrong.pk), note="Typo: input is 1, not 9."))
    assert ok.status_code == 302
    fixed = ModelPrice.objects.get(corrects=wrong)
    assert fixed.input_usd_per_mtok == Decimal("1")
    assert list(ModelPrice.objects.current().filter(model="test-haiku*")) == [fixed]
    wrong.refresh_from_db()
    assert wrong.input_usd_per_mtok == Decimal("9")  # history kept as it was
    # The superseded row cannot be corrected again.
    again = client.post(URL, form(corrects=str(wrong.pk), note="again"))
    assert again.status_code == 400


def test_unpriced_models_are_listed_with_a_link_to_price_them(client, finops, agent):
    ingest(*[call("mystery-9", ts=T0, input_tokens=5) for _ in range(3)])
    client.force_login(finops)
    page = client.get(URL).content.decode()
    assert "Models without a price" in page
    assert '<td><code>mystery-9</code></td><td class="num">3</td>' in page
    assert 'href="?provider=anthropic&amp;model=mystery-9#add-price"' in page
    prefilled = client.get(URL + "?provider=acme&model=mystery-9").content.decode()
    assert 'value="mystery-9"' in prefilled and 'value="acme"' in prefilled


def test_the_page_costs_a_fixed_number_of_queries(client, finops, django_assert_max_num_queries):
    for i in range(20):
        make_price(f"test-{i}*")
    client.force_login(finops)
    client.get(URL)
    with django_assert_max_num_queries(12):
        assert client.get(URL).status_code == 200


def test_a_past_dated_price_reprices_the_stored_calls(
    client, finops, agent, django_capture_on_commit_callbacks
):
    from opsdash.celery import app as celery_app

    items = [call("test-haiku-1", ts=T0, input_tokens=1_000_000) for _ in range(2)]
    ingest(*items)
    client.force_login(finops)
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(URL, form(effective_from="2026-10-01 00:00"))
    finally:
        celery_app.conf.task_always_eager = saved
    assert response.status_code == 302
    page = client.get(URL).content.decode()
    assert "calls stored since then are being repriced." in page
    from apps.costs.models import LlmUsage

    # 1,000,000 input tokens x 1 USD per million
    assert list(LlmUsage.objects.values_list("cost_usd", "cost_source")) == [
        (Decimal("1"), "price_table"),
        (Decimal("1"), "price_table"),
    ]
    assert "Models without a price" not in page


def admin_form(**overrides: Any) -> dict[str, str]:
    data = form(**overrides)
    data.update({"effective_from_0": "2026-12-01", "effective_from_1": "00:00:00"})
    del data["effective_from"]
    return data


def test_the_django_admin_adds_rows_under_the_same_history_rules(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="pw-for-tests-1")
    client.force_login(root)
    url = "/admin/costs/modelprice/add/"
    assert client.post(url, admin_form()).status_code == 302
    row = ModelPrice.objects.get(model="test-haiku*")
    assert (row.effective_from, row.created_by) == (datetime(2026, 12, 1, tzinfo=UTC), root)
    clash = client.post(url, admin_form(input_usd_per_mtok="2"))
    assert clash.status_code == 200  # the form again, with the reason
    assert "already has a price from 2026-12-01 00:00 UTC" in clash.content.decode()
    assert ModelPrice.objects.filter(model="test-haiku*").count() == 1
    # History is never edited in the admin either.
    change = client.post(
        f"/admin/costs/modelprice/{row.pk}/change/", admin_form(input_usd_per_mtok="9")
    )
    assert change.status_code == 403
    row.refresh_from_db()
    assert row.input_usd_per_mtok == Decimal("1")
