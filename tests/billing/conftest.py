"""Billing fixtures: the hand-written export files, their gzip and Parquet twins, personas."""

import gzip
import shutil
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Sum

from apps.billing.models import BillingImport, CostLineItem
from apps.billing.services import billing_import_run, billing_import_start_local

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def finops(make_person: Callable[..., Any]) -> Any:
    return make_person("fiona", "finops")


@pytest.fixture
def sre_lead(make_person: Callable[..., Any]) -> Any:
    return make_person("sam", "sre_lead")


@pytest.fixture
def approver(make_person: Callable[..., Any]) -> Any:
    return make_person("avery", "approver")


def fixture_path(name: str) -> Path:
    return FIXTURES / name


def run_import(path: Path, fmt: str) -> BillingImport:
    """What `import_billing` does, without the progress bar."""
    billing_import = billing_import_start_local(path=path, format=fmt)
    return billing_import_run(billing_import=billing_import, path=path)


def totals_by(field: str, **filters: Any) -> dict[Any, Decimal]:
    """Stored BilledCost summed per value of `field` (exact Decimals)."""
    rows = (
        CostLineItem.objects.filter(**filters)
        .values(field)
        .annotate(total=Sum("billed_cost"))
        .order_by(field)
    )
    return {row[field]: row["total"] for row in rows}


def gzip_copy(source: Path, target: Path) -> Path:
    with source.open("rb") as src, gzip.open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tmp_upload_dir(tmp_path: Path, settings: Any) -> Iterator[Path]:
    folder = tmp_path / "uploads"
    folder.mkdir()
    settings.BILLING_UPLOAD_DIR = folder
    yield folder
