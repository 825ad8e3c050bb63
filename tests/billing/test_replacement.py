"""A bill imported again, or restated, replaces the rows of its provider / billing account /
billing period — never doubles them — and leaves every other period alone."""

import threading
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from apps.billing.models import BillingImport, CostLineItem
from tests.billing.conftest import fixture_path, run_import, totals_by, write_csv


@pytest.mark.django_db
def test_reimporting_the_same_file_is_idempotent():
    first = run_import(fixture_path("focus_1_0.csv"), "focus")
    second = run_import(fixture_path("focus_1_0.csv"), "focus")

    assert (second.status, second.rows_imported, second.rows_replaced) == ("done", 5, 5)
    assert CostLineItem.objects.count() == 5
    assert set(CostLineItem.objects.values_list("billing_import", flat=True)) == {second.pk}
    assert totals_by("billing_currency") == {
        "EUR": Decimal("100"),
        "USD": Decimal("14.5956793012"),
    }
    assert first.rows_replaced == 0


@pytest.mark.django_db
def test_a_restated_bill_replaces_the_previous_totals():
    run_import(fixture_path("focus_1_0.csv"), "focus")
    restated = run_import(fixture_path("focus_restated.csv"), "focus")

    assert (restated.rows_imported, restated.rows_replaced) == (2, 5)
    assert totals_by("billing_currency") == {"EUR": Decimal("90.00"), "USD": Decimal("10.00")}
    assert CostLineItem.objects.get(billing_currency="USD").effective_cost == Decimal("9.50")


@pytest.mark.django_db
def test_other_accounts_periods_and_providers_are_untouched():
    september = run_import(fixture_path("aws_cur_legacy.csv"), "aws-cur2")  # AWS, Sept
    october = run_import(fixture_path("aws_cur2.csv"), "aws-cur2")  # same payer, October
    run_import(fixture_path("gcp.csv"), "gcp")
    run_import(fixture_path("focus_1_0.csv"), "focus")  # provider AWS, account acct-1001

    again = run_import(fixture_path("aws_cur2.csv"), "aws-cur2")

    assert again.rows_replaced == 5
    assert CostLineItem.objects.filter(billing_import=september).count() == 2
    assert not CostLineItem.objects.filter(billing_import=october).exists()
    assert totals_by("provider") == {
        "AWS": Decimal("0.75") + Decimal("1.3916") + Decimal("14.5956793012") + Decimal("100"),
        "Google Cloud": Decimal("13.42"),
    }


@pytest.mark.django_db
def test_a_file_level_failure_keeps_the_previous_bill(tmp_path: Path):
    run_import(fixture_path("focus_1_0.csv"), "focus")
    broken = write_csv(tmp_path / "broken.csv", "BilledCost,BillingCurrency\n1,USD\n")

    failed = run_import(broken, "focus")

    assert failed.status == "failed"
    assert CostLineItem.objects.count() == 5
    assert totals_by("billing_currency")["USD"] == Decimal("14.5956793012")


@pytest.mark.django_db(transaction=True)
def test_two_imports_of_the_same_bill_at_once_never_double_it():
    if connection.vendor != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's; SQLite serialises writers itself")
    barrier = threading.Barrier(2)
    results: list[BillingImport] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(run_import(fixture_path("focus_1_0.csv"), "focus"))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(r.status for r in results) == ["done", "done"]
    assert CostLineItem.objects.count() == 5
    assert totals_by("billing_currency")["USD"] == Decimal("14.5956793012")
