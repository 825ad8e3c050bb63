"""Real processes for system tests: gunicorn (the production server) and a Celery worker."""

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from django.db import connection

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def db_url() -> str:
    """The test database's URL, for a server or worker started in another process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER'] or 'postgres'}@{host}:{port}/{db['NAME']}"


def base_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    return env


@contextmanager
def gunicorn(env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process, closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "opsdash/gunicorn.conf.py",
            "opsdash.wsgi:application",
        ],
        cwd=ROOT,
        # One small worker unless the test asks for more.
        env={"WEB_WORKERS": "1", "WEB_THREADS": "4", **env, "WEB_BIND": f"127.0.0.1:{port}"},
        # A file, not a pipe: a pipe nobody reads fills up and blocks the server.
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"gunicorn exited: {log.read().decode()[-2000:]}")
            try:
                requests.get(f"{url}/api/v1/limits", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not start in 30 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@contextmanager
def celery_worker(env: dict[str, str], *, beat: bool = False) -> Iterator[subprocess.Popen]:
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "opsdash",
        "worker",
        "--pool",
        "solo",
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        f"test-{os.getpid()}@%h",
    ]
    if beat:
        args.append("--beat")
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process, closed below
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"worker exited: {log.read().decode()[-2000:]}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
