"""Shared set-up for the benchmarks: a scratch PostgreSQL database and Django."""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]


def scratch_database(name: str) -> str:
    """Drops and creates database `name` next to DATABASE_URL's; returns its URL."""
    import psycopg

    base = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    if base.scheme not in ("postgres", "postgresql"):
        sys.exit("Benchmarks need DATABASE_URL to point at PostgreSQL.")
    with psycopg.connect(base._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base._replace(path=f"/{name}").geturl()


def django_setup(database_url: str, *, migrate: bool = True) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsdash.settings")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789")
    os.environ.setdefault("PII_HMAC_KEY", "bench-pii-key-not-for-production-0123456789")
    os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/13")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def production_server(port: int, **env_overrides: str) -> subprocess.Popen[bytes]:
    """Starts opsdash under its production gunicorn config on loopback and waits until it answers."""
    import requests

    env = dict(
        os.environ, WEB_BIND=f"127.0.0.1:{port}", WEB_ACCESS_LOG="/dev/null", **env_overrides
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "opsdash/gunicorn.conf.py",
            "opsdash.wsgi:application",
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(150):
        try:
            requests.get(f"http://127.0.0.1:{port}/api/v1/limits", timeout=5)
            return server
        except requests.RequestException:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("the server did not start in 30 s")


def session_cookie(username: str) -> str:
    """A superuser's session cookie (Cookie header value), for timing pages as a person."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from apps.accounts.services import roles_ensure

    roles_ensure()
    user = get_user_model().objects.create_superuser(username, password=None)
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def measure(get, rounds: int) -> list[float]:
    """Calls `get` `rounds` times in a row; returns the latencies (ms), sorted."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        get()
        times.append((time.perf_counter() - t0) * 1000)
    return sorted(times)


def pct(xs: list[float], q: float) -> float:
    """The q-quantile of sorted latencies (nearest rank)."""
    return xs[max(int(len(xs) * q) - 1, 0)]


def postgres_settings() -> str:
    """The server settings a figure depends on, printed beside it (see postgres_production.sh)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, setting, coalesce(unit, '') FROM pg_settings WHERE name IN"
            " ('shared_buffers', 'max_wal_size', 'checkpoint_timeout', 'work_mem')"
            " ORDER BY name"
        )
        rows = cursor.fetchall()
    units = {"8kB": 8 * 1024, "kB": 1024, "MB": 1024**2}
    parts = []
    for name, setting, unit in rows:
        if unit in units:
            parts.append(f"{name} {int(setting) * units[unit] / 1024**2:,.0f} MB")
        else:
            parts.append(f"{name} {setting} {unit}".strip())
    return "PostgreSQL: " + ", ".join(parts)
