"""`manage.py import_billing FILE --format …`: what it prints, and its exit on a bad file."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.billing.models import BillingImport
from tests.billing.conftest import fixture_path, write_csv
from tests.billing.test_errors import HEADER, focus_row

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_billing", *args, stdout=out, stderr=err, verbosity=0)
    return out.getvalue(), err.getvalue()


def test_prints_rows_imported_rejected_and_totals_per_currency():
    out, err = run(str(fixture_path("focus_1_0.csv")), "--format", "focus")

    imp = BillingImport.objects.get()
    assert out == (
        f"Import #{imp.pk}: 5 rows imported, 0 rows rejected, 0 earlier rows replaced. "
        "Total BilledCost: EUR 100, USD 14.5956793012.\n"
    )
    assert err == ""
    assert (imp.source, imp.status, imp.file_name) == ("command", "done", "focus_1_0.csv")


def test_row_errors_are_printed_and_the_import_succeeds(tmp_path: Path):
    path = write_csv(tmp_path / "bad.csv", HEADER + focus_row("1.5") + focus_row("one"))

    out, err = run(str(path), "--format", "focus")

    assert "1 rows imported, 1 rows rejected" in out
    assert err == "  line 3, BilledCost: not a decimal number: 'one'\n"


def test_a_file_level_error_raises_with_the_message():
    with pytest.raises(CommandError) as raised:
        run(str(fixture_path("azure_ea.csv")), "--format", "aws-cur2")

    assert str(raised.value).startswith(
        "azure_ea.csv: Missing required columns for format 'aws-cur2': line_item_unblended_cost,"
    )
    assert BillingImport.objects.get().status == "failed"


def test_a_missing_file_is_a_command_error():
    with pytest.raises(CommandError, match=r"No such file: /nonexistent/bill\.csv"):
        run("/nonexistent/bill.csv", "--format", "focus")


@pytest.mark.django_db(transaction=True)
def test_exit_status_and_progress_bar_of_the_real_command(settings):
    """The command as a person runs it: the bar on stderr, the summary on stdout, exit 1 on
    a file-level error."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a second process cannot see the in-memory SQLite test database")
    db = connection.settings_dict
    env = {
        "PATH": "/usr/bin:/bin",
        "SECRET_KEY": settings.SECRET_KEY,
        "PII_HMAC_KEY": settings.PII_HMAC_KEY,
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
    }

    def command(name: str, fmt: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "manage.py",
                "import_billing",
                str(fixture_path(name)),
                "--format",
                fmt,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    good = command("azure_ea.csv", "azure")
    assert good.returncode == 0, good.stderr
    assert "azure_ea.csv: 100%" in good.stderr
    assert good.stdout.endswith(
        ": 3 rows imported, 0 rows rejected, 0 earlier rows replaced. "
        "Total BilledCost: EUR 124.812345.\n"
    )
    wrong = command("gcp.csv", "azure")
    assert wrong.returncode == 1
    assert "CommandError: gcp.csv: Missing required columns for format 'azure'" in wrong.stderr
