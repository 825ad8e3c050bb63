"""Whatever the cells of a bill hold, each row is imported or rejected with a reason; the
import never stops on an unexpected error, and its total is the sum of the rows it kept."""

import csv
import io
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.billing.models import CostLineItem
from tests.billing.conftest import fixture_path, run_import

pytestmark = pytest.mark.django_db

hostile = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "NULL",
            "NaN",
            "-Infinity",
            "1e999999",
            "9" * 40,
            "0." + "0" * 30 + "1",
            "2026-02-30T00:00:00Z",
            "9999-12-31T23:59:59-05:00",
            "[" * 3000,
            '{"a": {"b": 1}}',
            '[{"key": 1}]',
            '"k": "v"',
            "=1+1",
            "\\N",
            "usage",
            "TAX",
            "13/45/2026",
            '[{"name": "x", "amount": "abc"}]',
            '[{"name": "x", "amount": -1e400}]',
            "202613",
            "SavingsPlanNegation",
        ]
    ),
)


def first_row(name: str) -> dict[str, str]:
    with fixture_path(name).open(newline="") as source:
        return next(csv.DictReader(source))


FORMATS = {
    "focus": first_row("focus_1_0.csv"),
    "aws-cur2": first_row("aws_cur2.csv"),
    "gcp": first_row("gcp.csv"),
    "azure": first_row("azure_ea.csv"),
}


@st.composite
def bills(draw, good: dict[str, str]):
    rows = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        row = dict(good)
        for column in draw(st.lists(st.sampled_from(sorted(good)), max_size=3)):
            row[column] = draw(hostile)
        rows.append(row)
    return rows


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_row_is_kept_or_rejected_with_a_reason(fmt, data):
    good = FORMATS[fmt]
    rows = data.draw(bills(good))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(good))
    writer.writeheader()
    writer.writerows(rows)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_text(out.getvalue(), encoding="utf-8")
        imp = run_import(path, fmt)

    assert not imp.error_message.startswith("The import stopped on an unexpected error")
    assert imp.rows_imported + imp.rows_rejected == len(rows)
    # Every rejection names its reason: none fell through to the safety net.
    assert not [e for e in imp.row_errors if e["message"].startswith("unreadable row (")]
    kept = CostLineItem.objects.filter(billing_import=imp)
    assert kept.count() == imp.rows_imported
    stored = {}
    for currency, cost in kept.values_list("billing_currency", "billed_cost"):
        stored[currency] = stored.get(currency, Decimal(0)) + cost
    assert {c: Decimal(t) for c, t in imp.totals.items()} == stored
    CostLineItem.objects.all().delete()
