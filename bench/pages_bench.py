"""Dashboard pages with millions of events stored: p50/p95 per page vs /healthz in the same run.

    DATABASE_URL=postgres://…/opsdash_volume python bench/pages_bench.py   (after bulk_generate.py)

Target (DESIGN.md): p95 ≤ 300 ms with 10 M events stored.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import django_setup

ROUNDS = 20


def main() -> None:
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    django_setup(os.environ.get("DATABASE_URL", ""), migrate=False)
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # so responses carry their template context

    from apps.accounts.services import roles_ensure
    from apps.audit.models import Event, LedgerSeal
    from apps.fleet.models import Agent

    roles_ensure()
    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    agent = Agent.objects.order_by("slug").first()
    sample = Event.objects.order_by("-ts").first()
    incident = (
        Event.objects.filter(incident_id__isnull=False)
        .order_by("-ts")
        .values_list("incident_id", flat=True)
        .first()
    )
    total = sum(LedgerSeal.objects.values_list("event_count", flat=True))
    first_page = client.get("/audit/events/")
    pages = {
        "/healthz (baseline)": "/healthz",
        "fleet home": "/",
        "audit log": "/audit/events/",
        "audit log, one agent": f"/audit/events/?agent={agent.slug}",
        "audit log, one type": "/audit/events/?type=proposal",
        "audit log, one incident": f"/audit/events/?incident_id={incident}",
        "audit log, page 2": "/audit/events/?" + (first_page.context["next_query"] or ""),
        "event detail": f"/audit/events/{sample.id}/",
        "ledger": "/audit/ledger/",
        "actions": "/actions/",
        "API list (100)": f"/api/v1/events?agent={agent.slug}",
    }
    print(f"{total:,} events stored; {ROUNDS} rounds per page")
    baseline = None
    for name, url in pages.items():
        times = []
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        times.sort()
        p50, p95 = statistics.median(times), times[int(len(times) * 0.95) - 1]
        baseline = baseline or p50
        flag = "" if p95 <= 300 else "   <-- over 300 ms"
        print(
            f"{name:<26} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({p50 / baseline:5.1f}x baseline){flag}"
        )


if __name__ == "__main__":
    main()
