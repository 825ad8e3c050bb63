"""The production gunicorn configuration (also what the benchmarks measure).

Threaded workers, so a long-polling request holds a thread, not a process. Sized for the
machine by default: 2 * cores - 1 processes (one core's worth is left to PostgreSQL on a
shared box), 8 threads each, of which at most LONG_POLL_SLOTS (default half) may be waiting
in a long-poll at once; override with WEB_WORKERS / WEB_THREADS / WEB_BIND.
"""

import multiprocessing
import os

bind = os.environ.get("WEB_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", max(2, multiprocessing.cpu_count() * 2 - 1)))
threads = int(os.environ.get("WEB_THREADS", 8))
timeout = int(os.environ.get("WEB_TIMEOUT", 60))
graceful_timeout = 10
keepalive = 5
# Recycle workers now and then so slow leaks in any library cannot grow without bound.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", 20000))
max_requests_jitter = 2000
accesslog = os.environ.get("WEB_ACCESS_LOG", "-")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_worker_init(worker: object) -> None:
    from opsdash.warmup import worker_warm_up

    worker_warm_up()
