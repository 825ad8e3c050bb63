import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.demo.generator import DEMO_PEOPLE
from apps.demo.services import demo_password

CONFIG = Path(settings.BASE_DIR) / "opsdash" / "gunicorn.conf.py"


class Command(BaseCommand):
    help = (
        "Run opsdash on its embedded default: migrate, seed the demo fleet, then serve the web "
        "app (gunicorn) and a Celery worker with beat. Ctrl-C stops everything."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", default=os.environ.get("OPSDASH_BIND", "127.0.0.1:8000"))
        parser.add_argument("--no-seed", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "run_embedded is the demo mode; run it with DEBUG=1 (make run does)."
            )
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        if not options["no_seed"]:
            call_command("seed_demo")
        python = sys.executable
        processes = [
            subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
                [python, "-m", "gunicorn", "-c", str(CONFIG), "opsdash.wsgi:application"],
                # SQLite has one writer at a time: few processes, more threads.
                env={
                    **os.environ,
                    "WEB_BIND": options["bind"],
                    "WEB_WORKERS": "2",
                    "WEB_THREADS": "8",
                },
                # Each child leads its own process group, so stopping it reaches its own
                # children too (gunicorn workers, the Celery pool) and nothing is orphaned.
                start_new_session=True,
            ),
            subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "opsdash",
                    "worker",
                    "--beat",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "2",
                    "--hostname",
                    "embedded@%h",
                ],
                start_new_session=True,
            ),
        ]
        url = f"http://{options['bind']}/"
        self.stdout.write(self.style.SUCCESS(f"\nopsdash is running at {url}"))
        self.stdout.write("Log in as (username / password):")
        for username, _name, role in DEMO_PEOPLE:
            self.stdout.write(f"  {role:<9} {username:<10} {demo_password(username)}")
        self.stdout.write("Press Ctrl-C to stop the web server and the worker.\n")

        def stop(*_: Any) -> None:
            for process in processes:
                _signal_group(process, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for process in processes:
                with contextlib.suppress(subprocess.TimeoutExpired):  # killed just below
                    process.wait(timeout=max(deadline - time.monotonic(), 0.1))
                _signal_group(process, signal.SIGKILL)  # whatever of its group is left

        def terminate(*_: Any) -> None:
            stop()
            sys.exit(0)

        signal.signal(signal.SIGTERM, terminate)
        try:
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
            failed = [
                name
                for name, p in zip(("web", "worker"), processes, strict=True)
                if p.poll() not in (None, 0)
            ]
            if failed:
                self.stderr.write(f"A process stopped unexpectedly: {', '.join(map(str, failed))}")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            stop()


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
