"""One simulated agent process for the concurrency test: plain HTTP, no Django (the process is
spawned, and imports only this)."""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

CALL_USD = "0.30"  # each gated call: its estimate and its reported cost
UNGATED_USD = "0.25"  # every third round the agent also pays for a call that skipped the gate


def _event(reservation_id: str | None, cost: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "model": "test-sonnet-1",
        "input_tokens": 1000,
        "output_tokens": 100,
        "latency_ms": 800,
        "cost_usd": cost,
    }
    if reservation_id:
        data["reservation_id"] = reservation_id
    return {
        "id": str(uuid.uuid4()),
        "ts": (datetime.now(UTC) - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "agent": "triage-bot",
        "type": "llm_call",
        "data": data,
    }


def run_agent(url: str, token: str, rounds: int) -> list[dict[str, Any]]:
    """Each round: ask the gate, make the call if allowed, and every third round also pay for
    a call that skipped the gate; stops once the gate says the agent is halted. Returns what
    happened, with wall-clock times (one clock for every process on this machine)."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    log: list[dict[str, Any]] = []
    for i in range(rounds):
        started = time.time()
        answer = session.post(
            f"{url}/api/v1/gate",
            data=json.dumps(
                {"kind": "llm_call", "model": "test-sonnet-1", "estimated_cost_usd": CALL_USD}
            ),
            timeout=30,
        )
        reason = answer.json().get("reason", "") if answer.status_code != 200 else ""
        gate_entry = {
            "kind": "gate",
            "status": answer.status_code,
            "halted": "is halted" in reason,
            "started": started,
            "ended": time.time(),
        }
        log.append(gate_entry)
        sends = []
        if answer.status_code == 200:
            sends.append(_event(answer.json()["reservation_id"], CALL_USD))
        if i % 3 == 2:
            sends.append(_event(None, UNGATED_USD))
        for event in sends:
            stored = session.post(f"{url}/api/v1/events", data=json.dumps([event]), timeout=30)
            log.append(
                {
                    "kind": "event",
                    "status": stored.status_code,
                    "accepted": stored.json().get("accepted", 0) if stored.ok else 0,
                    "cost": event["data"]["cost_usd"],
                }
            )
        if gate_entry["halted"]:
            break
    return log
