"""An upload through the page is imported by a real Celery worker over Redis."""

import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from apps.billing.models import BillingImport, CostLineItem
from tests.billing.conftest import fixture_path
from tests.conftest import port_open, service_missing
from tests.system.servers import base_env, celery_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def redis_broker():
    if connection.vendor != "postgresql":
        service_missing("PostgreSQL (set DATABASE_URL=postgres://…)")
    if not port_open("127.0.0.1", 6379):
        service_missing("Redis on 127.0.0.1:6379")
    import redis

    from opsdash.celery import app

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis.Redis.from_url(url).flushdb()
    before = app.conf.broker_url
    # Connection and producer pools are built lazily for the configured broker: reset them.
    app.conf.broker_url, app._pool, app.amqp._producer_pool = url, None, None
    try:
        yield url
    finally:
        app.conf.broker_url, app._pool, app.amqp._producer_pool = before, None, None


def _db_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_an_uploaded_bill_is_imported_by_the_worker(
    redis_broker, client, finops, tmp_upload_dir: Path
):
    env = base_env(
        DATABASE_URL=_db_url(),
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
