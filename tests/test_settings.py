"""Settings come from the environment; demo secrets refuse to run in production."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _django_setup(**env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "PII_HMAC_KEY", "DEBUG")
    }
    clean.update(env)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'opsdash.settings'); django.setup()",
        ],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_secrets_are_refused_with_debug_off():
    result = _django_setup(DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is the demo default" in result.stderr


def test_short_secrets_are_refused():
    result = _django_setup(DEBUG="0", SECRET_KEY="short", PII_HMAC_KEY="x" * 40)
    assert "at least 32 characters" in result.stderr


def test_secrets_can_come_from_files(tmp_path):
    (tmp_path / "secret").write_text("s" * 40 + "\n")
    (tmp_path / "pii").write_text("p" * 40)
    result = _django_setup(
        DEBUG="0", SECRET_KEY_FILE=str(tmp_path / "secret"), PII_HMAC_KEY_FILE=str(tmp_path / "pii")
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("debug", ["1", "true"])
def test_demo_defaults_run_in_debug(debug):
    assert _django_setup(DEBUG=debug).returncode == 0


def _database_settings(**env: str) -> str:
    result = _django_setup(
        DEBUG="1",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
        **env,
    )
    assert result.returncode == 0, result.stderr
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'opsdash.settings');"
            "django.setup(); from django.conf import settings; d = settings.DATABASES['default'];"
            "print(d['CONN_MAX_AGE'], d['OPTIONS']['prepare_threshold'])",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DEBUG": "1",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    return probe.stdout.strip()


def test_postgres_connections_persist_and_prepare_hot_statements_by_default():
    assert _database_settings() == "None 5"


def test_poolers_can_turn_prepared_statements_off_and_bound_connection_age():
    assert _database_settings(DB_PREPARE_THRESHOLD="off", DB_CONN_MAX_AGE="300") == "300 None"
