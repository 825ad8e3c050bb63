"""The same bills as gzip'd CSV (told by its magic bytes, whatever its name) and as Parquet
with the types exporters really use: doubles for money, timestamps, maps, structs, lists."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from apps.billing.models import CostLineItem
from tests.billing.conftest import fixture_path, gzip_copy, run_import, totals_by

pytestmark = pytest.mark.django_db

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize("name", ["focus.csv.gz", "focus.csv", "focus.parquet"])
def test_gzip_is_detected_by_its_bytes_not_its_name(tmp_path: Path, name: str):
    path = gzip_copy(fixture_path("focus_1_0.csv"), tmp_path / name)

    imp = run_import(path, "focus")

    assert (imp.status, imp.rows_imported) == ("done", 5)
    assert imp.totals == {"EUR": "100", "USD": "14.5956793012"}


def test_truncated_gzip_is_a_file_level_error_and_writes_nothing(tmp_path: Path):
    whole = gzip_copy(fixture_path("focus_1_0.csv"), tmp_path / "whole.gz").read_bytes()
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) - 20])

    imp = run_import(path, "focus")

    assert imp.status == "failed"
    assert imp.error_message.startswith("The gzip stream is corrupt or truncated")
    assert (imp.rows_imported, CostLineItem.objects.count()) == (0, 0)


def test_focus_parquet_with_double_costs_is_exact(tmp_path: Path):
    # Doubles as exporters write them: 0.1 and 0.2 must add up to 0.3, not 0.30000000000000004.
    table = pa.table(
        {
            "BilledCost": pa.array([0.1, 0.2, 1234567.891], pa.float64()),
            "EffectiveCost": pa.array([0.1, 0.2, 1234567.891], pa.float64()),
            "ListCost": pa.array([None, 0.25, 1300000.0], pa.float64()),
            "BillingCurrency": ["USD", "USD", "USD"],
            "BillingAccountId": ["acct-9"] * 3,
            "BillingPeriodStart": pa.array([OCT] * 3, pa.timestamp("us", tz="UTC")),
            "BillingPeriodEnd": pa.array([NOV] * 3, pa.timestamp("us", tz="UTC")),
            "ChargePeriodStart": pa.array([OCT] * 3, pa.timestamp("us")),  # naive: UTC
            "ChargePeriodEnd": pa.array([NOV] * 3, pa.timestamp("us")),
            "ChargeCategory": ["usage", "Usage", "USAGE"],
            "ProviderName": ["Oracle"] * 3,
            "PublisherName": ["Oracle"] * 3,
            "ServiceName": ["Compute", "Compute", "Storage"],
            "ConsumedQuantity": pa.array([1.5, None, 2.0], pa.float64()),
            "Tags": ['{"team":"platform"}', None, "{}"],
        }
    )
    path = tmp_path / "focus.parquet"
    pq.write_table(table, path, row_group_size=2)

    imp = run_import(path, "focus")

    assert (imp.status, imp.rows_imported, imp.rows_rejected) == ("done", 3, 0)
    assert imp.totals == {"USD": "1234568.191"}
    assert totals_by("service_name") == {
        "Compute": Decimal("0.3"),
        "Storage": Decimal("1234567.891"),
    }
    first = CostLineItem.objects.get(service_name="Compute", list_cost__isnull=True)
    assert (first.consumed_quantity, first.charge_period_start, first.tags) == (
        Decimal("1.5"),
        OCT,
        {"team": "platform"},
    )


def test_cur2_parquet_map_tags_and_doubles(tmp_path: Path):
    tags_type = pa.map_(pa.string(), pa.string())
    table = pa.table(
        {
            "bill_billing_period_start_date": pa.array([OCT, OCT], pa.timestamp("ms")),
            "bill_billing_period_end_date": pa.array([NOV, NOV], pa.timestamp("ms")),
            "bill_payer_account_id": ["999988887777", "999988887777"],
            "line_item_line_item_type": ["Usage", "Tax"],
            "line_item_usage_start_date": pa.array([OCT, OCT], pa.timestamp("ms")),
            "line_item_usage_end_date": pa.array([NOV, NOV], pa.timestamp("ms")),
            "line_item_unblended_cost": pa.array([0.0000123456, 0.7], pa.float64()),
            "line_item_currency_code": ["USD", "USD"],
            "line_item_product_code": ["AmazonEC2", "AmazonEC2"],
            "resource_tags": pa.array(
                [[("user:team", "platform"), ("user:opsdash-agent", "triage-bot")], []],
                tags_type,
            ),
        }
    )
    path = tmp_path / "cur2.parquet"
    pq.write_table(table, path)

    imp = run_import(path, "aws-cur2")

    assert (imp.status, imp.totals) == ("done", {"USD": "0.7000123456"})
    usage = CostLineItem.objects.get(charge_category="Usage")
    assert usage.billed_cost == Decimal("0.0000123456")
    assert usage.tags == {"team": "platform", "opsdash-agent": "triage-bot"}
    assert CostLineItem.objects.get(charge_category="Tax").tags == {}


def test_gcp_parquet_structs_and_repeated_labels(tmp_path: Path):
    label = pa.struct([("key", pa.string()), ("value", pa.string())])
    credit = pa.struct([("name", pa.string()), ("amount", pa.float64())])
    table = pa.table(
        {
            "billing_account_id": ["01ABCD-234567-89EFGH"] * 2,
            "service": pa.array(
                [
                    {"id": "6F81", "description": "Compute Engine"},
                    {"id": "24E6", "description": "BigQuery"},
                ]
            ),
            "project": pa.array([{"id": "acme-ml"}, {"id": "acme-data"}]),
            "usage_start_time": pa.array([OCT, OCT], pa.timestamp("us", tz="UTC")),
            "usage_end_time": pa.array([NOV, NOV], pa.timestamp("us", tz="UTC")),
            "labels": pa.array([[{"key": "team", "value": "ml"}], []], pa.list_(label)),
            "cost": pa.array([10.5, 3.14], pa.float64()),
            "currency": ["USD", "USD"],
            "credits": pa.array([[{"name": "SUD", "amount": -1.05}], []], pa.list_(credit)),
            "invoice": pa.array([{"month": "202610"}, {"month": "202610"}]),
        }
    )
    path = tmp_path / "gcp.parquet"
    pq.write_table(table, path)

    imp = run_import(path, "gcp")

    assert (imp.status, imp.totals) == ("done", {"USD": "12.59"})
    compute = CostLineItem.objects.get(service_name="Compute Engine")
    assert (compute.billed_cost, compute.tags, compute.sub_account_id) == (
        Decimal("9.45"),
        {"team": "ml"},
        "acme-ml",
    )


def test_parquet_missing_column_is_named(tmp_path: Path):
    path = tmp_path / "short.parquet"
    pq.write_table(pa.table({"BilledCost": [1.0], "BillingCurrency": ["USD"]}), path)

    imp = run_import(path, "focus")

    assert imp.status == "failed"
    assert imp.error_message.startswith(
        "Missing required columns for format 'focus': EffectiveCost, ListCost, ChargePeriodStart,"
    )


def test_not_parquet_after_the_magic_bytes(tmp_path: Path):
    path = tmp_path / "fake.parquet"
    path.write_bytes(b"PAR1 but then nothing of the sort")

    imp = run_import(path, "focus")

    assert imp.status == "failed"
    assert imp.error_message.startswith("Not a readable Parquet file")


def test_parquet_list_where_text_belongs_rejects_the_row(tmp_path: Path):
    table = pa.table(
        {
            "BilledCost": ["1.00", "2.00"],
            "EffectiveCost": ["1.00", "2.00"],
            "ListCost": [None, None],
            "BillingCurrency": ["USD", "USD"],
            "BillingAccountId": ["acct-9", "acct-9"],
            "BillingPeriodStart": ["2026-10-01", "2026-10-01"],
            "BillingPeriodEnd": ["2026-11-01", "2026-11-01"],
            "ChargePeriodStart": ["2026-10-01", "2026-10-01"],
            "ChargePeriodEnd": ["2026-10-02", "2026-10-02"],
            "ChargeCategory": ["Usage", "Usage"],
            "ProviderName": ["Oracle", "Oracle"],
            "ServiceName": pa.array([["a", "b"], None], pa.list_(pa.string())),
        }
    )
    path = tmp_path / "odd.parquet"
    pq.write_table(table, path)

    imp = run_import(path, "focus")

    assert (imp.status, imp.rows_imported, imp.rows_rejected) == ("done", 1, 1)
    assert imp.row_errors == [
        {"row": 1, "line": None, "column": "ServiceName", "message": "expected text, not a list"}
    ]
