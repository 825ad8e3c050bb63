"""The embedded default that `make run` uses: SQLite (WAL) + filesystem broker + a real worker."""

import re
import subprocess
import sys

import pytest
import requests

from tests.conftest import event
from tests.system.servers import ROOT, base_env, celery_worker, gunicorn, wait_for

pytestmark = pytest.mark.worker


def _manage(env, *args):
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_migrate_seed_ingest_and_render_on_sqlite_with_a_filesystem_broker(tmp_path):
    env = base_env(
        DEBUG="1",
        OPSDASH_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'opsdash.sqlite3'}",
    )
    env.pop("CELERY_BROKER_URL", None)
    _manage(env, "migrate", "--verbosity", "0")
    seeded = _manage(env, "seed_demo", "--days", "2", "--verbosity", "0")
    assert "admin-demo-pass" in seeded
    assert "Demo fleet already loaded" in _manage(
        env, "seed_demo", "--days", "2", "--verbosity", "0"
    )
    raw = (
        _manage(env, "mint_token", "triage-bot", "--scopes", "events:write")
        .strip()
        .splitlines()[-1]
    )
    assert (tmp_path / "broker" / "queue").is_dir()

    with gunicorn(env) as url, celery_worker(env):
        batch = [event(data={"text": "embedded smoke event"}) for _ in range(3)]
        response = requests.post(
            f"{url}/api/v1/events",
            json=batch,
            headers={"Authorization": f"Bearer {raw}"},
            timeout=30,
        )
        assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
        # The worker consumes the filesystem queue and brings derived work up to date.
        assert wait_for(
            lambda: (
                requests.get(f"{url}/healthz", timeout=5).json()["derived_lag"]
                == {"daily_counts": 0, "slo": 0, "tool_call_counts": 0}
            ),
            timeout=60,
        )

        session = requests.Session()
        login = session.get(f"{url}/login/", timeout=10)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        session.post(
            f"{url}/login/",
            data={"username": "admin", "password": "admin-demo-pass", "csrfmiddlewaretoken": csrf},
            headers={"Referer": f"{url}/login/"},
            timeout=10,
        )
        page = session.get(f"{url}/audit/events/", params={"type": "note"}, timeout=10)
        assert page.status_code == 200
        assert page.text.count("embedded smoke event") == 3
        assert session.get(f"{url}/", timeout=10).status_code == 200
    import sqlite3

    with sqlite3.connect(tmp_path / "opsdash.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_ctrl_c_stops_the_web_server_and_the_worker(tmp_path):
    import os
    import signal
    import time

    from tests.conftest import free_port

    port = free_port()
    env = base_env(
        DEBUG="1",
        OPSDASH_VAR_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    env.pop("CELERY_BROKER_URL", None)
    log = tmp_path / "run.log"
    with log.open("w") as out:
        # Its own session, like a terminal's foreground job: Ctrl-C reaches the whole group.
        runner = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_embedded",
                "--no-seed",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # A terminal delivers Ctrl-C; a shell's background job (a CI runner's, say) starts
            # with SIGINT ignored, and children inherit that: give it back its default.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        assert wait_for(lambda: "opsdash is running at" in log.read_text(), timeout=60), (
            log.read_text()[-2000:]
        )
        assert wait_for(lambda: _ok(f"http://127.0.0.1:{port}/healthz"), timeout=30)
        assert len(_processes_of(tmp_path)) >= 3  # run_embedded, gunicorn (+workers), celery
        os.killpg(runner.pid, signal.SIGINT)
        runner.wait(timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _processes_of(tmp_path):
            time.sleep(0.2)
        assert not _processes_of(tmp_path), "a process of run_embedded outlived Ctrl-C"
        assert not _ok(f"http://127.0.0.1:{port}/healthz")
    finally:
        for pid in _processes_of(tmp_path):
            os.kill(pid, signal.SIGKILL)


def _ok(url):
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _processes_of(var_dir):
    """Every live process started for this embedded instance (found by its OPSDASH_VAR_DIR)."""
    import os
    from pathlib import Path

    marker = f"OPSDASH_VAR_DIR={var_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            state = (proc / "stat").read_text().split(") ")[-1][0]
        except OSError:
            continue
        if marker + b"\0" in environ + b"\0" and state != "Z":
            found.append(int(proc.name))
    return [pid for pid in found if pid != os.getpid()]
