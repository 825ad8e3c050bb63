"""An upload through the page is imported by a real Celery worker over Redis."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.billing.models import BillingImport, CostLineItem
from tests.billing.conftest import fixture_path
from tests.system.servers import base_env, celery_worker, db_url, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_an_uploaded_bill_is_imported_by_the_worker(
    redis_broker, client, finops, tmp_upload_dir: Path
):
    env = base_env(
        DATABASE_URL=db_url(),
        CELERY_BROKER_URL=redis_broker,
        BILLING_UPLOAD_DIR=str(tmp_upload_dir),
    )
    client.force_login(finops)
    with celery_worker(env):
        response = client.post(
            "/billing/imports/",
            {
                "file": SimpleUploadedFile("gcp-2026-10.csv", fixture_path("gcp.csv").read_bytes()),
                "format": "gcp",
            },
        )
        assert response.status_code == 302
        imp = BillingImport.objects.get()
        assert wait_for(
            lambda: BillingImport.objects.get(pk=imp.pk).status in ("done", "failed"), timeout=60
        )
    imp.refresh_from_db()
    assert (imp.status, imp.rows_imported, imp.totals) == ("done", 3, {"USD": "13.42"})
    assert CostLineItem.objects.filter(billing_import=imp).count() == 3
    row = client.get(f"/billing/imports/{imp.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="done"' in row and "hx-get" not in row and "USD 13.42" in row
