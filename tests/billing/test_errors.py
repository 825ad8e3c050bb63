"""Bad rows are reported one by one while the good ones are kept; a wrong format or a
missing column is one clear file-level error, and nothing is written."""

from decimal import Decimal
from pathlib import Path

import pytest

from apps.billing.models import BillingImport, CostLineItem
from tests.billing.conftest import fixture_path, run_import, totals_by, write_csv

pytestmark = pytest.mark.django_db

HEADER = (
    "BilledCost,BillingAccountId,BillingCurrency,BillingPeriodEnd,BillingPeriodStart,"
    "ChargeCategory,ChargePeriodEnd,ChargePeriodStart,EffectiveCost,ListCost,ProviderName,"
    "ServiceName,Tags\n"
)
P = "2026-11-01T00:00:00Z,2026-10-01T00:00:00Z"  # billing period end, start
C = "2026-10-02T00:00:00Z,2026-10-01T00:00:00Z"  # charge period end, start


def focus_row(cost: str = "1.00", currency: str = "USD", category: str = "Usage", **kw: str) -> str:
    charge = kw.get("charge", C)
    tags = kw.get("tags", "")
    effective = kw.get("effective", cost)
    return f"{cost},acct-1,{currency},{P},{category},{charge},{effective},{cost},AWS,EC2,{tags}\n"


def errors(imp: BillingImport) -> list[tuple[int, int | None, str, str]]:
    return [(e["row"], e["line"], e["column"], e["message"]) for e in imp.row_errors]


def test_bad_rows_are_reported_and_good_rows_kept(tmp_path: Path):
    path = write_csv(
        tmp_path / "messy.csv",
        HEADER
        + focus_row("10.10")
        + focus_row('"12,34"')  # a decimal comma: not a number here
        + focus_row("2.02", charge="2026-10-02T00:00:00Z,yesterday")
        + focus_row("3.03", currency="")
        + focus_row("NaN")
        + focus_row("4.04", category="Refund")
        + "5.05,acct-1,USD\n"  # too few fields
        + focus_row("6.06", tags='"{not json"')
        + focus_row("7.07", charge="2026-10-01T00:00:00Z,2026-10-02T00:00:00Z")
        + "\n"  # a blank line is skipped, not an error
        + focus_row("0.000000000001")
        + focus_row("1e3", currency="eur"),
    )

    imp = run_import(path, "focus")

    assert (imp.status, imp.rows_imported, imp.rows_rejected) == ("done", 3, 8)
    assert errors(imp) == [
        (2, 3, "BilledCost", "not a decimal number: '12,34'"),
        (3, 4, "ChargePeriodStart", "not a timestamp: 'yesterday'"),
        (4, 5, "BillingCurrency", "a value is required"),
        (5, 6, "BilledCost", "not a finite number: 'NaN'"),
        (6, 7, "ChargeCategory", "unknown value 'Refund'"),
        (7, 8, "", "has 3 fields; the header has 13"),
        (8, 9, "Tags", "tags are not valid JSON: '{not json'"),
        (9, 10, "ChargePeriodEnd", "the charge period ends before it starts"),
    ]
    assert imp.row_errors_total == 8
    assert imp.totals == {"EUR": "1000", "USD": "10.100000000001"}
    assert totals_by("billing_currency") == {
        "EUR": Decimal("1000"),
        "USD": Decimal("10.100000000001"),
    }


def test_wrong_format_is_one_file_level_error_naming_the_columns():
    imp = run_import(fixture_path("gcp.csv"), "focus")

    assert (imp.status, imp.rows_imported, CostLineItem.objects.count()) == ("failed", 0, 0)
    assert imp.error_message == (
        "Missing required columns for format 'focus': BilledCost, EffectiveCost, ListCost, "
        "BillingCurrency, ChargePeriodStart, ChargePeriodEnd, BillingPeriodStart, "
        "BillingPeriodEnd, ChargeCategory, ServiceProviderName, BillingAccountId. "
        "The columns look like the 'gcp' format: import it as that."
    )
    assert imp.row_errors == []


def test_missing_required_column_is_named(tmp_path: Path):
    source = fixture_path("azure_ea.csv").read_text().splitlines()
    header = source[0].replace(",BillingCurrencyCode", ",Currency")
    path = write_csv(tmp_path / "azure.csv", "\n".join([header, *source[1:]]) + "\n")

    imp = run_import(path, "azure")

    assert imp.status == "failed"
    assert imp.error_message.startswith(
        "Missing required column for format 'azure': BillingCurrencyCode. "
        "The file's columns are: InvoiceSectionName, AccountName,"
    )
    assert CostLineItem.objects.count() == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b"PK\x03\x04rest-of-a-zip", "This is a ZIP archive: unzip it and import the CSV or"),
        (b"\n\n", "The file has no header row."),
        ("BilledCost,x\n".encode("utf-16"), "The file is UTF-16 text (Excel's"),
    ],
)
def test_unreadable_files_fail_with_a_message(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "bill.csv"
    path.write_bytes(content)

    imp = run_import(path, "focus")

    assert imp.status == "failed"
    assert imp.error_message.startswith(message)


def test_header_only_file_imports_nothing(tmp_path: Path):
    imp = run_import(write_csv(tmp_path / "empty.csv", HEADER), "focus")

    assert (imp.status, imp.rows_imported, imp.rows_rejected, imp.totals) == ("done", 0, 0, {})


def test_every_row_rejected_marks_the_import_failed(tmp_path: Path):
    path = write_csv(tmp_path / "bad.csv", HEADER + focus_row("x") + focus_row("y"))

    imp = run_import(path, "focus")

    assert (imp.status, imp.rows_rejected) == ("failed", 2)
    assert imp.error_message == "Every row was rejected (2); see the row errors."


def test_the_row_error_report_is_bounded(tmp_path: Path, settings):
    settings.BILLING_MAX_ROW_ERRORS = 5
    path = write_csv(tmp_path / "bad.csv", HEADER + focus_row("1") + focus_row("oops") * 12)

    imp = run_import(path, "focus")

    assert (imp.rows_imported, imp.rows_rejected, imp.row_errors_total) == (1, 12, 12)
    assert [e["line"] for e in imp.row_errors] == [3, 4, 5, 6, 7]


def test_money_precision_and_range(tmp_path: Path):
    path = write_csv(
        tmp_path / "big.csv",
        HEADER
        + focus_row("12345678901234567.1234567890125")  # 17 + 13 digits: rounded to 12 places
        + focus_row("1234567890123456789.5")  # 19 integer digits: out of range
        + focus_row("0.0000000000005")  # below the 12th place: half-even to 0
        + focus_row("-0.0000000000015"),  # half-even to -0.000000000002
    )

    imp = run_import(path, "focus")

    assert (imp.rows_imported, imp.rows_rejected) == (3, 1)
    assert imp.row_errors[0]["message"] == "out of range (more than 18 integer digits)"
    assert sorted(CostLineItem.objects.values_list("billed_cost", flat=True)) == [
        Decimal("-0.000000000002"),
        Decimal("0"),
        Decimal("12345678901234567.123456789012"),
    ]
    assert imp.totals == {"USD": "12345678901234567.12345678901"}
