"""Each format's hand-written export (real column headers) lands as FOCUS rows whose totals
equal the file's, exactly, per currency and per dimension."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from apps.billing.models import CostLineItem
from tests.billing.conftest import fixture_path, run_import, totals_by

pytestmark = pytest.mark.django_db

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)


def test_focus_1_0_totals_to_the_cent_per_currency_and_dimension():
    imp = run_import(fixture_path("focus_1_0.csv"), "focus")

    assert (imp.status, imp.rows_imported, imp.rows_rejected) == ("done", 5, 0)
    # 12.3456789012 + 0.0000004 - 5.25 + 7.5; the tax row is in EUR.
    assert imp.totals == {"EUR": "100", "USD": "14.5956793012"}
    assert totals_by("billing_currency") == {
        "EUR": Decimal("100"),
        "USD": Decimal("14.5956793012"),
    }
    assert totals_by("service_name", billing_currency="USD") == {
        "AWS Support": Decimal("7.5"),
        "Amazon EC2": Decimal("7.0956789012"),
        "Amazon S3": Decimal("0.0000004"),
    }
    assert totals_by("charge_category") == {
        "Credit": Decimal("-5.25"),
        "Purchase": Decimal("7.5"),
        "Tax": Decimal("100"),
        "Usage": Decimal("12.3456793012"),
    }
    ec2 = CostLineItem.objects.get(resource_id="i-0abc123")
    assert ec2.tags == {"team": "platform", "opsdash-agent": "triage-bot"}
    assert (ec2.provider, ec2.publisher, ec2.billing_account_id) == ("AWS", "AWS", "acct-1001")
    assert (ec2.effective_cost, ec2.list_cost) == (Decimal("11.00"), Decimal("15.00"))
    assert ec2.consumed_quantity == Decimal(24) and ec2.consumed_unit == "Hours"
    # "2026-10-01 00:00:00" (no T, no Z) and "+00:00" read as the same UTC instant.
    s3 = CostLineItem.objects.get(service_name="Amazon S3")
    assert (s3.charge_period_start, s3.billing_period_start, s3.billing_period_end) == (
        OCT,
        OCT,
        NOV,
    )
    assert s3.charge_category == "Usage" and s3.list_cost is None  # "usage", "NULL"
    support = CostLineItem.objects.get(service_name="AWS Support")
    assert (support.billing_currency, support.charge_category) == ("USD", "Purchase")
    credit = CostLineItem.objects.get(charge_category="Credit")
    assert (credit.resource_id, credit.region_id, credit.tags) == ("", "", {})
    assert imp.periods == [
        {
            "provider": "AWS",
            "billing_account_id": "acct-1001",
            "billing_period_start": "2026-10-01T00:00:00+00:00",
            "rows": 5,
        }
    ]


def test_focus_1_3_service_and_host_provider_spellings():
    imp = run_import(fixture_path("focus_1_3.csv"), "focus")

    assert (imp.status, imp.totals) == ("done", {"USD": "8"})
    rows = list(CostLineItem.objects.order_by("charge_period_start"))
    assert [(r.provider, r.publisher) for r in rows] == [("Anthropic", "Anthropic")] * 2
    assert [r.tags["opsdash-agent"] for r in rows] == ["triage-bot", "k8s-healer"]
    assert [r.sku_id for r in rows] == ["claude-sonnet-4-5-input", "claude-sonnet-4-5-output"]


def test_aws_cur2_line_item_types_effective_cost_and_tag_map():
    imp = run_import(fixture_path("aws_cur2.csv"), "aws-cur2")

    assert (imp.status, imp.rows_imported, imp.totals) == ("done", 5, {"USD": "1.3916"})
    by_id = {r.resource_id: r for r in CostLineItem.objects.all()}
    ec2 = by_id["i-0aaa"]
    # The `user:` prefix of user-defined tags is dropped; AWS's own keys keep theirs.
    assert ec2.tags == {"team": "platform", "opsdash-agent": "triage-bot", "aws:createdBy": "ci"}
    assert (ec2.provider, ec2.billing_account_id, ec2.sub_account_id) == (
        "AWS",
        "999988887777",
        "111111111111",
    )
    assert ec2.service_name == "Amazon Elastic Compute Cloud" and ec2.sku_id == "ABCD1234"
    covered, negation = (
        CostLineItem.objects.filter(resource_id="i-0bbb").order_by("-billed_cost").all()
    )
    assert (covered.billed_cost, covered.effective_cost, covered.list_cost) == (
        Decimal("0.0832"),
        Decimal("0.0520"),
        Decimal("0.0960"),
    )
    assert (negation.billed_cost, negation.effective_cost) == (Decimal("-0.0832"), Decimal(0))
    rds = by_id["arn:aws:rds:eu-west-1:222222222222:db:orders"]
    assert (rds.effective_cost, rds.region_id) == (Decimal("0.06"), "eu-west-1")
    tax = CostLineItem.objects.get(charge_category="Tax")
    assert (tax.billed_cost, tax.service_name) == (Decimal("1.25"), "AmazonEC2")
    assert totals_by("charge_category") == {"Tax": Decimal("1.25"), "Usage": Decimal("0.1416")}
    assert sum(r.effective_cost for r in CostLineItem.objects.all()) == Decimal("1.4036")


def test_aws_legacy_cur_columns_and_per_key_tag_columns():
    imp = run_import(fixture_path("aws_cur_legacy.csv"), "aws-cur2")

    assert (imp.status, imp.totals) == ("done", {"USD": "0.75"})
    ec2 = CostLineItem.objects.get(resource_id="i-0ccc")
    assert ec2.tags == {"team": "platform", "opsdash-agent": "triage-bot"}
    # Empty per-key cells are absent keys, not empty tags.
    assert CostLineItem.objects.get(resource_id="acme-bucket").tags == {"team": "data"}
    assert ec2.billing_period_start == datetime(2026, 9, 1, tzinfo=UTC)
    assert ec2.region_id == "us-west-2" and ec2.consumed_unit == "Hrs"


def test_gcp_flattened_columns_credits_and_labels():
    imp = run_import(fixture_path("gcp.csv"), "gcp")

    # 10.50 - 1.05 credit + 3.14 + 0.83 tax
    assert (imp.status, imp.totals) == ("done", {"USD": "13.42"})
    compute = CostLineItem.objects.get(service_name="Compute Engine")
    assert (compute.billed_cost, compute.effective_cost, compute.list_cost) == (
        Decimal("9.45"),
        Decimal("9.45"),
        Decimal("12.00"),
    )
    assert compute.tags == {"team": "ml", "opsdash-agent": "k8s-healer"}
    assert (compute.provider, compute.sub_account_id, compute.region_id) == (
        "Google Cloud",
        "acme-ml",
        "us-central1",
    )
    # "2026-10-01 00:00:00 UTC" is BigQuery's CSV spelling of a timestamp.
    assert compute.charge_period_start == OCT
    assert compute.billing_period_start == OCT and compute.billing_period_end == NOV
    bigquery = CostLineItem.objects.get(service_name="BigQuery")
    assert (bigquery.region_id, bigquery.tags) == ("US", {})  # location.location fallback
    assert CostLineItem.objects.get(service_name="Invoice").charge_category == "Tax"  # "TAX"


def test_azure_ea_tags_without_braces_and_us_dates():
    imp = run_import(fixture_path("azure_ea.csv"), "azure")

    assert (imp.status, imp.totals) == ("done", {"EUR": "124.812345"})
    vm = CostLineItem.objects.get(resource_id__endswith="vm-triage")
    assert vm.tags == {"team": "platform", "opsdash-agent": "triage-bot"}
    assert (vm.charge_period_start, vm.charge_period_end) == (
        OCT,
        datetime(2026, 10, 2, tzinfo=UTC),
    )
    # BillingPeriodEndDate 10/31/2026 is the last day: the exclusive end is November 1st.
    assert (vm.billing_period_start, vm.billing_period_end) == (OCT, NOV)
    assert vm.list_cost == Decimal("6.00")  # PayGPrice 0.25 x 24 h
    assert (vm.provider, vm.billing_account_id, vm.sku_id) == (
        "Microsoft",
        "80012345",
        "9a8b7c6d-1111-2222-3333-444455556666",
    )
    assert totals_by("charge_category") == {
        "Purchase": Decimal("120.00"),
        "Usage": Decimal("4.812345"),
    }


def test_azure_mca_lower_camel_columns():
    imp = run_import(fixture_path("azure_mca.csv"), "azure")

    assert (imp.status, imp.totals) == ("done", {"USD": "2.25"})
    row = CostLineItem.objects.get()
    assert (row.list_cost, row.tags, row.service_name) == (
        Decimal("3.00"),
        {"team": "ml"},
        "Azure OpenAI",
    )
    assert row.billing_period_end == NOV
