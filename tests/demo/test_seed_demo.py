from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from apps.actions.models import Action
from apps.audit.models import Event
from apps.audit.services.ledger import ledger_verify
from apps.demo.services import demo_fleet_seed
from apps.fleet.models import Agent, Team

pytestmark = pytest.mark.django_db

ANCHOR = datetime(2026, 11, 20, tzinfo=UTC)


def test_demo_fleet_is_believable_and_loads_through_ingest():
    result = demo_fleet_seed(anchor=ANCHOR, days=6, incidents_per_day=8)
    assert result.events_rejected == 0
    assert result.events_accepted == Event.objects.count()
    assert Team.objects.count() >= 3
    assert Agent.objects.count() >= 8
    assert set(Agent.objects.values_list("autonomy_mode", flat=True)) == {
        "observe",
        "suggest",
        "auto_low_risk",
    }
    types = set(Event.objects.values_list("type", flat=True))
    assert {
        "alert",
        "context",
        "llm_call",
        "proposal",
        "policy_decision",
        "approval",
        "execution",
        "outcome",
    } <= types
    statuses = set(Action.objects.values_list("status", flat=True))
    assert {"succeeded", "recorded"} <= statuses
    assert ledger_verify().ok


def test_seeding_twice_adds_nothing():
    first = demo_fleet_seed(anchor=ANCHOR, days=3, incidents_per_day=5)
    count = Event.objects.count()
    again = demo_fleet_seed(anchor=ANCHOR, days=3, incidents_per_day=5)
    assert again.already_seeded
    forced = demo_fleet_seed(anchor=ANCHOR, days=3, incidents_per_day=5, force=True)
    assert forced.events_accepted == 0
    assert forced.events_duplicate == first.events_accepted
    assert Event.objects.count() == count


def test_seed_demo_command_prints_one_login_per_role(settings, capsys):
    settings.DEBUG = True
    call_command("seed_demo", "--days", "2", verbosity=0)
    out = capsys.readouterr().out
    for role in ("viewer", "approver", "sre_lead", "finops", "admin"):
        assert role in out
    assert "admin-demo-pass" in out


def test_a_fleet_seeded_now_has_nothing_from_the_future():
    from django.utils import timezone

    now = timezone.now()
    result = demo_fleet_seed(anchor=now, days=3, incidents_per_day=12)
    done = timezone.now()
    assert result.events_rejected == 0
    # What the fleet did is generated up to the anchor; what opsdash itself did while seeding
    # (the demo budgets, made past their first thresholds, act at once) happened meanwhile.
    assert set(Event.objects.filter(ts__gt=now).values_list("type", flat=True)) <= {
        "budget_threshold"
    }
    assert not Event.objects.filter(ts__gt=done).exists()


def test_the_demo_policy_is_loaded_once_and_never_over_an_existing_one():
    from apps.policy.models import PolicyVersion
    from apps.policy.services import policy_version_create

    demo_fleet_seed(anchor=ANCHOR, days=1, incidents_per_day=2)
    demo = PolicyVersion.objects.get(active=True)
    assert demo.created_by == "seed_demo"
    custom, _ = policy_version_create(source="rules: []\n")
    demo_fleet_seed(anchor=ANCHOR, days=1, incidents_per_day=2, force=True)
    assert PolicyVersion.objects.get(active=True) == custom


def test_the_seeded_demo_slos_show_every_state_and_one_burning_fast():
    """make run opens on SLOs with numbers: the seed applies its events' facts and evaluates."""
    from django.utils import timezone

    from apps.slo.models import SloStatus

    demo_fleet_seed(anchor=timezone.now(), days=42, incidents_per_day=7.0)
    states = dict(SloStatus.objects.values_list("slo__slug", "state"))
    assert states["platform-time-to-propose"] == "critical"  # the fast burner
    assert states["cost-sweeper-acceptance"] == "warning"  # its budget is spent
    assert states["payments-rollback"] == "ok"
    # Every demo action's llm_calls are priced at ingest (Claude list prices): a few cents each.
    assert states["fleet-cost-per-action"] == "ok"
    assert sorted(set(states.values())) == ["critical", "no_data", "ok", "warning"]
