"""The Billing imports page: finops only, upload, status rows HTMX polls, the error report."""

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.billing.models import BillingImport, CostLineItem
from tests.billing.conftest import fixture_path, run_import, write_csv
from tests.billing.test_errors import HEADER, focus_row

pytestmark = pytest.mark.django_db
LIST = "/billing/imports/"


def upload(client, name: str, content: bytes, fmt: str = "focus"):
    return client.post(
        LIST, {"file": SimpleUploadedFile(name, content), "format": fmt}, follow=True
    )


def test_roles_other_than_finops_are_refused(client, viewer, approver, sre_lead, outsider):
    imp = run_import(fixture_path("focus_1_3.csv"), "focus")
    for person in (viewer, approver, sre_lead, outsider):
        client.force_login(person)
        assert client.get(LIST).status_code == 403
        assert client.get(reverse("billing:import", args=[imp.pk])).status_code == 403
        assert upload(client, "x.csv", b"a,b\n").status_code == 403
        if person is not outsider:
            assert "Billing imports" not in client.get("/").content.decode()
    assert BillingImport.objects.count() == 1
    client.logout()
    assert client.get(LIST)["Location"].startswith("/login/")


def test_finops_sees_imports_with_status_counts_and_totals(client, finops, tmp_path: Path):
    run_import(fixture_path("focus_1_0.csv"), "focus")
    bad = write_csv(tmp_path / "half.csv", HEADER + focus_row("2.50") + focus_row("n/a"))
    run_import(bad, "focus")
    run_import(fixture_path("gcp.csv"), "azure")
    client.force_login(finops)

    response = client.get(LIST)

    page = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'<a href="/billing/imports/"[^>]*>Billing imports</a>', page)  # nav
    rows = {r.file_name: r for r in BillingImport.objects.all()}
    assert "EUR 100.00" in page and "USD 14.60" in page  # rounded for reading...
    assert 'title="14.5956793012"' in page  # ...exact on hover
    half = page[page.index(f'id="import-{rows["half.csv"].pk}"') :]
    half = half[: half.index("</tr>")]
    assert ">done<" in half and "USD 2.50" in half
    assert (
        f'<a class="warn-text" href="/billing/imports/{rows["half.csv"].pk}/#row-errors">1</a>'
        in half
    )
    failed = page[page.index(f'id="import-{rows["gcp.csv"].pk}"') :]
    assert ">failed<" in failed[: failed.index("</tr>")]
    assert "Missing required columns for format &#x27;azure&#x27;" in page
    assert "hx-get" not in page  # nothing is running: nothing polls


def test_list_page_query_count_does_not_grow_with_imports(
    client, finops, django_assert_max_num_queries
):
    for _ in range(15):
        run_import(fixture_path("focus_1_3.csv"), "focus")
    client.force_login(finops)
    with django_assert_max_num_queries(12):
        assert client.get(LIST).status_code == 200


def test_a_queued_import_row_polls_until_it_is_done(client, finops):
    imp = BillingImport.objects.create(file_name="later.csv", format="focus")
    client.force_login(finops)
    url = reverse("billing:import", args=[imp.pk])

    row = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert row.startswith(f'<tr id="import-{imp.pk}" data-status="queued" hx-get="{url}"')
    assert 'hx-trigger="every 2s' in row and "<html" not in row

    BillingImport.objects.filter(pk=imp.pk).update(status="done", rows_imported=7)
    row = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert row.startswith(f'<tr id="import-{imp.pk}" data-status="done">')
    assert '<td class="num">7</td>' in row
    # Polled from the import's own page, a finished import reloads it (its error report).
    reload = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=f"http://testserver{url}")
    assert (reload.status_code, reload["HX-Refresh"], reload.content) == (200, "true", b"")


def test_detail_page_shows_the_row_error_report(client, finops, tmp_path: Path, settings):
    settings.BILLING_MAX_ROW_ERRORS = 2
    bad = write_csv(
        tmp_path / "bad.csv",
        HEADER + focus_row("1") + focus_row("x") + focus_row("y") + focus_row("z"),
    )
    imp = run_import(bad, "focus")
    client.force_login(finops)

    page = client.get(reverse("billing:import", args=[imp.pk])).content.decode()

    assert "3 rows rejected; the first 2 are listed" in page
    assert (
        '<tr><td class="num">2</td><td class="num">3</td><td class="mono">BilledCost</td>'
        "<td>not a decimal number: &#x27;x&#x27;</td></tr>"
    ) in page
    assert "not a decimal number: &#x27;z&#x27;" not in page
    assert "acct-1" in page  # the billing period it replaced


def test_upload_is_stored_queued_and_processed_after_commit(
    client, finops, tmp_upload_dir: Path, django_capture_on_commit_callbacks, eager_celery
):
    client.force_login(finops)
    content = fixture_path("aws_cur2.csv").read_bytes()

    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, "cur-2026-10.csv", content, "aws-cur2")

    assert response.status_code == 200
    imp = BillingImport.objects.get()
    assert f"cur-2026-10.csv is queued as import #{imp.pk}" in response.content.decode()
    assert (imp.status, imp.rows_imported, imp.totals) == ("done", 5, {"USD": "1.3916"})
    assert (imp.uploaded_by, imp.file_size, imp.source) == (finops, len(content), "upload")
    assert (tmp_upload_dir / imp.stored_name).read_bytes() == content
    assert CostLineItem.objects.count() == 5


def test_upload_over_the_limit_is_refused_with_a_clear_message(
    client, finops, settings, tmp_upload_dir
):
    settings.BILLING_UPLOAD_MAX_BYTES = 1000
    client.force_login(finops)

    small_but_over = upload(client, "big.csv", b"x" * 1500)
    assert small_but_over.status_code == 400
    assert "The file is 1.5\xa0KB; uploads are limited to 1000\xa0bytes" in (
        small_but_over.content.decode()
    )

    # Far over (by the request's length): refused before the body is read.
    huge = upload(client, "huge.csv", b"x" * 200_000)
    assert huge.status_code == 413
    assert (
        "uploads are limited to 1000\xa0bytes (BILLING_UPLOAD_MAX_BYTES)" in huge.content.decode()
    )
    assert BillingImport.objects.count() == 0
    assert list(tmp_upload_dir.iterdir()) == []


def test_upload_without_a_file_or_with_an_unknown_format(client, finops, tmp_upload_dir):
    client.force_login(finops)

    missing = client.post(LIST, {"format": "focus"})
    unknown = upload(client, "a.csv", b"a,b\n", fmt="oracle")
    empty = upload(client, "a.csv", b"")

    assert missing.status_code == unknown.status_code == empty.status_code == 400
    assert "This field is required." in missing.content.decode()
    assert "Select a valid choice. oracle is not one of the available choices." in (
        unknown.content.decode()
    )
    assert "The submitted file is empty." in empty.content.decode()
    assert BillingImport.objects.count() == 0


def test_sweep_requeues_lost_uploads_and_fails_dead_imports(
    finops, tmp_upload_dir: Path, eager_celery
):
    from datetime import timedelta

    from django.core.files.base import ContentFile
    from django.utils import timezone

    from apps.billing.services import billing_imports_sweep, upload_storage

    now = timezone.now()
    stored = upload_storage().save(
        "lost.csv", ContentFile(fixture_path("focus_1_3.csv").read_bytes())
    )
    lost = BillingImport.objects.create(
        file_name="lost.csv",
        stored_name=stored,
        format="focus",
        created_at=now - timedelta(minutes=11),
    )
    BillingImport.objects.create(file_name="fresh.csv", format="focus", created_at=now)
    dead = BillingImport.objects.create(
        file_name="dead.csv", format="focus", status="running", started_at=now - timedelta(hours=4)
    )
    BillingImport.objects.create(
        file_name="busy.csv", format="focus", status="running", started_at=now - timedelta(hours=1)
    )

    assert billing_imports_sweep(now=now) == {"requeued": 1, "failed": 1}

    status = dict(BillingImport.objects.values_list("file_name", "status"))
    assert status == {
        "lost.csv": "done",
        "fresh.csv": "queued",
        "dead.csv": "failed",
        "busy.csv": "running",
    }
    lost.refresh_from_db()
    assert lost.totals == {"USD": "8"}
    dead.refresh_from_db()
    assert dead.error_message.startswith("The import stopped before finishing")


def test_an_unusable_file_name_is_stored_under_a_safe_one(
    client, finops, tmp_upload_dir: Path, django_capture_on_commit_callbacks, eager_celery
):
    client.force_login(finops)
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, "¤¤¤", fixture_path("focus_1_3.csv").read_bytes())

    imp = BillingImport.objects.get()
    assert (imp.file_name, imp.status, imp.rows_imported) == ("¤¤¤", "done", 2)
    assert imp.stored_name.endswith("-billing")
