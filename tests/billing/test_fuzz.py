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
from tests.billing.conftest import run_import
from tests.billing.test_errors import HEADER

pytestmark = pytest.mark.django_db

COLUMNS = HEADER.strip().split(",")
GOOD = {
    "BilledCost": "1.25",
    "BillingAccountId": "acct-1",
    "BillingCurrency": "USD",
    "BillingPeriodEnd": "2026-11-01T00:00:00Z",
    "BillingPeriodStart": "2026-10-01T00:00:00Z",
    "ChargeCategory": "Usage",
    "ChargePeriodEnd": "2026-10-02T00:00:00Z",
    "ChargePeriodStart": "2026-10-01T00:00:00Z",
    "EffectiveCost": "1.25",
    "ListCost": "1.30",
    "ProviderName": "AWS",
    "ServiceName": "EC2",
    "Tags": '{"team":"platform"}',
}
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
        ]
    ),
)


@st.composite
def bills(draw):
    rows = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        row = dict(GOOD)
        for column in draw(st.lists(st.sampled_from(COLUMNS), max_size=3)):
            row[column] = draw(hostile)
        rows.append(row)
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=bills())
def test_every_row_is_kept_or_rejected_with_a_reason(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_text(out.getvalue(), encoding="utf-8")
        imp = run_import(path, "focus")

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
