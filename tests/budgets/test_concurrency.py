"""Eight agent processes spend across a cap at once, through a real server (PostgreSQL)."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from apps.audit.models import Event
from apps.budgets.models import BudgetCrossing
from apps.budgets.selectors import budget_standing
from apps.budgets.services import budget_create
from apps.fleet.models import Agent
from apps.fleet.services import agent_token_mint
from tests.budgets import load_client
from tests.system.servers import base_env, db_url, gunicorn

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL"
    ),
]
PROCESSES = 8
ROUNDS = 12


def test_eight_processes_across_a_cap_one_halt_exact_spend_no_allowance_after_it(
    agent, make_person, capsys
):
    make_person("fay", "finops")
    budget = budget_create(
        slug="race",
        name="Race",
        scope="agent",
        agent=agent,
        measure="llm_usd",
        period="daily",
        cap=Decimal("10"),
    )
    _, token = agent_token_mint(
        agent=agent, scopes=["events:write", "gate:check"], ttl=timedelta(days=1)
    )
    env = base_env(DATABASE_URL=db_url(), WEB_WORKERS="3", WEB_THREADS="8")
    with (
        gunicorn(env) as url,
        ProcessPoolExecutor(PROCESSES, mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        logs = list(
            pool.map(
                load_client.run_agent, [url] * PROCESSES, [token] * PROCESSES, [ROUNDS] * PROCESSES
            )
        )
    records = [r for log in logs for r in log]
    assert {r["status"] for r in records if r["kind"] == "event"} == {200}

    # Exactly one halt, however many writers crossed the cap together.
    assert BudgetCrossing.objects.filter(budget=budget, action="halt").count() == 1
    assert Event.objects.filter(type="budget_threshold", data__action="halt").count() == 1
    assert Agent.objects.get(pk=agent.pk).halted

    # The counter is every accepted event's cost, to the cent (and exactly).
    accepted = sum(
        (Decimal(r["cost"]) for r in records if r["kind"] == "event" and r["accepted"]), Decimal(0)
    )
    spent = budget_standing(budget).spent
    assert spent == accepted

    # No gate allowance for a call asked after a "halted" answer (the halt had committed).
    gates = [r for r in records if r["kind"] == "gate"]
    first_halted = min(r["ended"] for r in gates if r["halted"])
    assert not [r for r in gates if r["status"] == 200 and r["started"] > first_halted]
    assert {r["status"] for r in gates} <= {200, 423, 429}  # 429: the 90 % throttle

    # Past the cap only by what was already on its way: the ungated calls and the calls the
    # gate allowed before the halt, each at most one per process.
    overshoot = spent - Decimal("10")
    in_flight_bound = PROCESSES * (Decimal(load_client.CALL_USD) + Decimal(load_client.UNGATED_USD))
    with capsys.disabled():
        print(
            f"\n8 processes: spent {spent} USD of a 10 USD cap, overshoot {overshoot} USD "
            f"(bound {in_flight_bound} USD), {len(gates)} gate calls"
        )
    assert Decimal(0) <= overshoot <= in_flight_bound
