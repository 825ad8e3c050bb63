from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from apps.accounts.services import roles_ensure
from apps.audit.models import AGENT_WRITABLE_TYPES, EventSource
from apps.audit.services.derived import derived_catch_up
from apps.audit.services.ingest import ALL_TYPES, agent_lookup_cache, event_batch_ingest
from apps.costs.models import CostDriverRate, DriverKind
from apps.demo.generator import (
    DEMO_AGENTS,
    DEMO_PASSWORD_SUFFIX,
    DEMO_PEOPLE,
    DEMO_SEED,
    DEMO_TEAMS,
    DemoFleetGenerator,
)
from apps.demo.models import DemoSeed
from apps.demo.slos import demo_slos_ensure
from apps.fleet.models import Agent, Team

INGEST_CHUNK = 500


@dataclass
class DemoSeedResult:
    teams_created: int = 0
    agents_created: int = 0
    people_created: int = 0
    events_accepted: int = 0
    events_duplicate: int = 0
    events_rejected: int = 0
    already_seeded: bool = False
    slos_created: int = 0


def demo_password(username: str) -> str:
    return username + DEMO_PASSWORD_SUFFIX


def demo_fleet_seed(
    *,
    anchor: datetime | None = None,
    days: int = 42,
    incidents_per_day: float = 7.0,
    with_people: bool = True,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSeedResult:
    """Loads the demo fleet; running it again adds nothing (same ids, same content)."""
    result = DemoSeedResult()
    roles_ensure()
    with transaction.atomic():
        for slug, name, cost_centre in DEMO_TEAMS:
            _, created = Team.objects.get_or_create(
                slug=slug, defaults={"name": name, "cost_centre": cost_centre}
            )
            result.teams_created += created
        teams = {t.slug: t for t in Team.objects.all()}
        for spec in DEMO_AGENTS:
            _, created = Agent.objects.get_or_create(
                slug=spec.slug,
                defaults={
                    "team": teams[spec.team],
                    "autonomy_mode": spec.mode,
                    "environment": spec.env,
                    "name": spec.slug,
                },
            )
            result.agents_created += created
        if with_people:
            result.people_created = _people_ensure()

    demo_policy_load()
    demo_driver_rates_ensure()
    marker = DemoSeed.objects.first()
    if marker is not None and not force:
        result.already_seeded = True
        result.slos_created = demo_slos_ensure()
        return result
    anchor = marker.anchor if marker is not None else (anchor or timezone.now())
    generator = DemoFleetGenerator(anchor=anchor, days=days, incidents_per_day=incidents_per_day)
    lookup = agent_lookup_cache()
    for day, batches in enumerate(generator.batches_by_day()):
        # Decisions before what the agents did next: an execution folded before its approval
        # would look, for a moment, like a policy violation and notify people about nothing.
        for items, source, types in (
            (batches.opsdash_events, EventSource.OPSDASH, ALL_TYPES),
            (batches.agent_events, EventSource.API, AGENT_WRITABLE_TYPES),
        ):
            for start in range(0, len(items), INGEST_CHUNK):
                ingest = event_batch_ingest(
                    items=items[start : start + INGEST_CHUNK],
                    source=source,
                    allowed_types=types,
                    agents_by_slug=lookup,
                )
                result.events_accepted += ingest.accepted
                result.events_duplicate += ingest.duplicates
                result.events_rejected += len(ingest.rejected)
        if progress:
            progress(day + 1, days)
    if marker is None:
        DemoSeed.objects.create(
            anchor=generator.cutoff, seed=DEMO_SEED, events_accepted=result.events_accepted
        )
    # After the events: derived work (SLI facts, incidents) now rather than at the worker's
    # next sweep, so the SLOs' rollups and statuses are complete when the seed returns.
    derived_catch_up()
    result.slos_created = demo_slos_ensure()
    return result


DEMO_POLICY = Path(__file__).with_name("policy.yaml")

# Demo rates, so the cost explorer's logging and tool-call drivers have figures. Log storage
# at CloudWatch Logs' archived-storage list price (USD 0.03 per GB-month, us-east-1); the tool
# rates are made up for the demo: a real deployment sets its own on the prices page.
DEMO_DRIVER_RATES = (
    (DriverKind.LOG_STORAGE, "", Decimal("0.03"), "CloudWatch Logs archived storage, us-east-1"),
    (DriverKind.TOOL_CALL, "*", Decimal("0.0002"), "demo: internal tools, compute and egress"),
    (DriverKind.TOOL_CALL, "loki_query", Decimal("0.0011"), "demo: Grafana Cloud Logs query"),
)
DEMO_RATES_FROM = date(2025, 1, 1)


def demo_driver_rates_ensure() -> None:
    for kind, tool, rate, note in DEMO_DRIVER_RATES:
        CostDriverRate.objects.get_or_create(
            kind=kind,
            tool=tool,
            effective_from=DEMO_RATES_FROM,
            defaults={"usd_rate": rate, "note": note},
        )


def demo_policy_load() -> None:
    """The demo policy, unless a policy is already active (never overwrite someone's edits)."""
    from apps.policy.models import PolicyVersion
    from apps.policy.services import policy_version_create

    if not PolicyVersion.objects.filter(active=True).exists():
        policy_version_create(
            source=DEMO_POLICY.read_text(), created_by="seed_demo", note="demo policy"
        )


def _people_ensure() -> int:
    user_model = get_user_model()
    created = 0
    for username, full_name, role in DEMO_PEOPLE:
        user, was_created = user_model.objects.get_or_create(
            username=username,
            defaults={
                "first_name": full_name.split()[0],
                "last_name": full_name.split()[-1],
                "email": f"{username}@demo.opsdash.invalid",
                "is_staff": role == "admin",
            },
        )
        if was_created:
            user.set_password(demo_password(username))
            user.save()
            created += 1
        user.groups.add(Group.objects.get(name=role))
    return created
