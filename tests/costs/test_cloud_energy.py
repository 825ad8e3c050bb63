"""Cloud line items through Cloud Carbon Footprint coefficients: every figure worked by hand
from the CCF methodology's Appendix I/III/V (apps.costs.cloud_energy)."""

from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.billing.models import CostLineItem
from apps.costs.cloud_energy import Kind, cloud_energy_config, cloud_energy_config_check, vcpus_in
from apps.costs.energy import energy_config
from apps.costs.energy_selectors import MissingEstimate, cloud_energy_missing
from apps.costs.energy_services import cloud_energy_compute
from apps.costs.models import CloudEnergy, CloudEnergyBasis
from tests.billing.conftest import run_import, write_csv

pytestmark = pytest.mark.django_db

HEADER = (
    "BilledCost,BillingAccountId,BillingCurrency,BillingPeriodEnd,BillingPeriodStart,"
    "ChargeCategory,ChargePeriodEnd,ChargePeriodStart,ConsumedQuantity,ConsumedUnit,"
    "EffectiveCost,ListCost,ProviderName,RegionId,ServiceName,SkuId,Tags\n"
)
P = "2026-11-01T00:00:00Z,2026-10-01T00:00:00Z"
C = "2026-10-02T00:00:00Z,2026-10-01T00:00:00Z"


def row(provider: str, service: str, sku: str, qty: str, unit: str, region: str, cat="Usage"):
    return f"1.00,acct-1,USD,{P},{cat},{C},{qty},{unit},1.00,1.00,{provider},{region},{service},{sku},\n"


ROWS = {
    # 10 vCPU-h x (0.74 + 0.5 x (3.5 - 0.74) = 2.12 W) x PUE 1.135 = 24.062 Wh;
    # x 379.069 g/kWh (us-east-1) / 1000 = 9.121158278 g
    "fargate": row("AWS", "AWS Fargate", "USE1-Fargate-vCPU", "10", "vCPU-Hours", "us-east-1"),
    # t3.large = 2 vCPU: 24 h x 2 x 2.12 x 1.135 = 115.4976 Wh; x 278.6 (eu-west-1) = 32.17763136
    "t3": row("AWS", "Amazon EC2", "BoxUsage:t3.large", "24", "Hrs", "eu-west-1"),
    # an opaque SKU id: the vCPU count is unknown
    "opaque": row("AWS", "Amazon EC2", "SKU-EC2-1", "24", "Hrs", "us-east-1"),
    # 100 GiB-months x 744 h (October) = 74,400 GB-h x 0.65 / 1000 Wh x PUE 1.1 = 53.196 Wh;
    # x 454 (us-central1) = 24.150984
    "gcs": row("Google Cloud", "Cloud Storage", "S-1", "100", "gibibyte month", "us-central1"),
    # 10 GiB-hours as byte-seconds: 10 x 2^30 x 3600; x 0.392 W x 1.1 = 4.312 Wh; x 212 = 0.914144
    "ram": row(
        "Google Cloud", "Compute Engine", "R-1", "38654705664000", "byte-seconds", "europe-west1"
    ),
    # 5 T4 GPU-hours x (8 + 0.5 x 63 = 39.5 W) x 1.1 = 217.25 Wh; x 454 = 98.6315
    "gpu": row("Google Cloud", "Compute Engine", "nvidia-tesla-t4", "5", "hour", "us-central1"),
    # Azure "1 GB" units: 50 GB x 1 Wh x PUE 1.185 = 59.25 Wh; x 328.4 (westeurope) = 19.4577
    "egress": row("Microsoft", "Bandwidth", "B-1", "50", "1 GB", "westeurope"),
    # a generic FOCUS provider: 100 vCPU-h x (0.74 + 0.5 x 3.02 = 2.25 W) x COSTS_PUE 1.2 = 270 Wh;
    # x 381 (de) = 102.87
    "hetzner": row("Hetzner", "Cloud Servers", "cx22", "100", "vCPU-Hours", "DE"),
    "tax": row("AWS", "Tax", "", "", "", "", cat="Tax"),
    "tokens": row("Anthropic", "Claude API", "claude-sonnet-4-5-input", "1000000", "Tokens", ""),
    "unknown": row("AWS", "Amazon Route 53", "R53", "3", "Queries", "us-east-1"),
}


@pytest.fixture
def imported(tmp_path: Path) -> dict[str, CloudEnergy]:
    cloud_energy_config.cache_clear()
    path = write_csv(tmp_path / "focus.csv", HEADER + "".join(ROWS.values()))
    imp = run_import(path, "focus")
    assert imp.status == "done", imp.error_message
    by_sku = {}
    for energy in CloudEnergy.objects.select_related("line_item", "basis"):
        by_sku[energy.line_item.sku_id or energy.line_item.service_name] = energy
    return by_sku


def figures(energy: CloudEnergy) -> tuple[str, Decimal | None, Decimal | None, str]:
    return (energy.basis.kind, energy.energy_wh, energy.gco2e, energy.basis.grid_region)


def test_an_import_estimates_each_line_item_by_hand_worked_ccf_figures(imported):
    assert figures(imported["USE1-Fargate-vCPU"]) == (
        "compute",
        Decimal("24.062"),
        Decimal("9.121158"),
        "us-east-1",
    )
    assert figures(imported["BoxUsage:t3.large"]) == (
        "compute",
        Decimal("115.4976"),
        Decimal("32.177631"),
        "eu-west-1",
    )
    assert figures(imported["S-1"]) == (
        "storage_hdd",
        Decimal("53.196"),
        Decimal("24.150984"),
        "us-central1",
    )
    assert figures(imported["R-1"]) == (
        "memory",
        Decimal("4.312"),
        Decimal("0.914144"),
        "europe-west1",
    )
    assert figures(imported["nvidia-tesla-t4"]) == (
        "gpu",
        Decimal("217.25"),
        Decimal("98.6315"),
        "us-central1",
    )
    assert figures(imported["B-1"]) == (
        "network",
        Decimal("59.25"),
        Decimal("19.4577"),
        "westeurope",
    )
    assert figures(imported["cx22"]) == ("compute", Decimal("270"), Decimal("102.87"), "de")


def test_the_method_names_the_coefficients_used(imported):
    basis = imported["BoxUsage:t3.large"].basis
    assert basis.method == (
        "CCF compute: vCPU-hours x 2.120 W x PUE 1.135; grid eu-west-1 278.6 g/kWh"
    )
    assert basis.coefficients == {
        "provider": "aws",
        "pue": "1.135",
        "min_watts": "0.74",
        "max_watts": "3.5",
        "utilisation": "0.5",
        "grid_gco2e_per_kwh": "278.6",
    }


def basis_of(sku: str) -> CloudEnergyBasis:
    item = CostLineItem.objects.get(sku_id=sku)
    assert not CloudEnergy.objects.filter(line_item=item).exists()  # no row, not a zero
    return CloudEnergyBasis.objects.get(
        provider=item.provider,
        service_name=item.service_name,
        sku_id=item.sku_id,
        consumed_unit=item.consumed_unit,
        region_id=item.region_id,
        charge_category=item.charge_category,
    )


def test_what_cannot_be_classified_has_no_estimate_and_says_why(imported):
    assert (basis_of("SKU-EC2-1").kind, basis_of("SKU-EC2-1").wh_per_unit) == (
        "unclassified",
        None,
    )
    assert (basis_of("R53").kind, basis_of("").kind) == ("unclassified", "not_usage")
    tokens = basis_of("claude-sonnet-4-5-input")
    assert (tokens.kind, tokens.method) == ("llm_tokens", "counted from llm_call events")
    assert CloudEnergy.objects.count() == 7
    # Tax and LLM tokens are not missing estimates; the two unclassified usage lines are.
    assert cloud_energy_missing() == [
        MissingEstimate(
            "AWS",
            "Amazon EC2",
            "Hrs",
            "instance time whose SKU id names no instance type, so the vCPU count is "
            'unknown: map the SKU in COSTS_CLOUD_ENERGY["skus"]',
            1,
            Decimal("1.000000000000"),
            "USD",
        ),
        MissingEstimate(
            "AWS",
            "Amazon Route 53",
            "Queries",
            "no coefficient for Amazon Route 53 in Queries",
            1,
            Decimal("1.000000000000"),
            "USD",
        ),
    ]


def test_line_items_without_an_estimate_yet_are_listed_so(imported):
    CloudEnergy.objects.filter(line_item__sku_id="B-1").delete()
    assert [(m.provider, m.service_name, m.reason[:20]) for m in cloud_energy_missing()] == [
        ("AWS", "Amazon EC2", "instance time whose "),
        ("AWS", "Amazon Route 53", "no coefficient for A"),
        ("Microsoft", "Bandwidth", "not estimated yet: r"),
    ]
    assert cloud_energy_compute() == 7
    assert len(cloud_energy_missing()) == 2


def test_recomputing_is_idempotent_and_follows_changed_coefficients(imported, settings):
    assert cloud_energy_compute() == 7
    assert (
        imported["USE1-Fargate-vCPU"].energy_wh
        == CloudEnergy.objects.get(pk=imported["USE1-Fargate-vCPU"].pk).energy_wh
    )
    settings.COSTS_CLOUD_ENERGY = {
        "utilisation": "1",
        "skus": [{"sku": "SKU-EC2-*", "kind": "compute", "vcpus": 4}],
    }
    cloud_energy_config.cache_clear()
    out = StringIO()
    call_command("cloud_energy_recompute", stdout=out)
    cloud_energy_config.cache_clear()
    # utilisation 1: 10 vCPU-h x 3.5 W x 1.135 = 39.725 Wh; the mapped SKU: 24 h x 4 vCPU x
    # 3.5 x 1.135 = 381.36 Wh
    fargate = CloudEnergy.objects.get(pk=imported["USE1-Fargate-vCPU"].pk)
    opaque = CloudEnergy.objects.get(line_item__sku_id="SKU-EC2-1")
    assert (fargate.energy_wh, opaque.energy_wh, opaque.basis.kind) == (
        Decimal("39.725"),
        Decimal("381.36"),
        "compute",
    )
    # t3.large at 100 %: 24 x 2 x 3.5 x 1.135 = 190.68; T4 at 100 %: 5 x 71 x 1.1 = 390.5;
    # Hetzner: 100 x 3.76 x 1.2 = 451.2
    total = (
        Decimal("39.725")
        + Decimal("381.36")
        + Decimal("190.68")
        + Decimal("53.196")
        + Decimal("4.312")
        + Decimal("390.5")
        + Decimal("59.25")
        + Decimal("451.2")
    )
    assert out.getvalue() == (
        f"Estimated 8 line items: {total:,.3f} Wh in all; 1 usage line items have no energy "
        "estimate (the Energy page says why).\n"
    )
    assert list(
        CloudEnergyBasis.objects.filter(kind=Kind.UNCLASSIFIED).values_list("sku_id", flat=True)
    ) == ["R53"]


def test_instance_types_in_sku_ids_give_vcpus():
    assert [
        vcpus_in(s)
        for s in (
            "t3.medium",
            "BoxUsage:m5.4xlarge",
            "m5.xlarge",
            "n2-standard-8",
            "Standard_D2s_v5",
            "D16as v4",
            "SKU-1",
        )
    ] == [2, 16, 4, 8, 2, 16, None]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("x", "COSTS_CLOUD_ENERGY must be a JSON object."),
        ({"utilization": "0.5"}, "COSTS_CLOUD_ENERGY has unknown keys utilization: the keys are"),
        ({"utilisation": "50"}, 'COSTS_CLOUD_ENERGY["utilisation"] is a fraction: 0 to 1'),
        ({"providers": {"oracle": {}}}, "has 'oracle': use aws, gcp, azure or other."),
        (
            {"providers": {"aws": {"min_watts": "5"}}},
            "COSTS_CLOUD_ENERGY[\"providers\"]['aws']: max_watts is below min_watts.",
        ),
        ({"skus": [{"sku": "X", "kind": "cpu"}]}, 'COSTS_CLOUD_ENERGY["skus"] items need "sku"'),
        (
            {"gpus": {"h100": "700"}},
            "COSTS_CLOUD_ENERGY[\"gpus\"]['h100'] must be [idle W, max W].",
        ),
        ({"memory_w_per_gb": "-1"}, "must be a non-negative number, not '-1'."),
    ],
)
def test_bad_configuration_names_the_bad_value(overrides, message):
    llm = energy_config()
    with pytest.raises(ValueError) as caught:
        cloud_energy_config_check(
            overrides=overrides, pue="1.2", grid=llm.grid, default_region="world"
        )
    assert message in str(caught.value)
