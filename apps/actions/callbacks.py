"""What follows an action's change of state: the agent's decision callback and, for a policy
violation, the people who must know.

`actions_after_fold` is called by the read model inside the ingest transaction; it only writes
rows (a CallbackDelivery, inbox notifications) and queues the sending after commit, so the
request that made the decision never waits on an agent's server.
"""

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.roles import APPROVER, SRE_LEAD
from apps.actions.models import Action, action_path
from apps.audit.canonical import format_ts
from apps.fleet.models import Agent
from apps.notifications.models import CallbackDelivery
from apps.notifications.outbound import (
    PostOutcome,
    enqueue,
    outbound_attempt,
    post_bytes,
    url_refusal,
)
from apps.notifications.services import notify

SIGNATURE_HEADER = "X-Opsdash-Signature"
DELIVERY_HEADER = "X-Opsdash-Delivery"

# An execution reported long after the fact (history imported in bulk) is flagged on the
# action page and counted in the top bar, but not pushed to people's inboxes.
VIOLATION_NOTIFY_WINDOW = timedelta(days=1)

# (decision_event_id, policy_violation) of each action before the fold, by action_id.
Before = dict[str, tuple[str, bool]]


def actions_before_fold(actions: dict[str, Action], action_ids: Sequence[str]) -> Before:
    return {
        a: (str(actions[a].decision_event_id or ""), actions[a].policy_violation)
        for a in action_ids
    }


def actions_after_fold(
    *, actions: Sequence[Action], before: Before, agents: Mapping[int, Agent] | None = None
) -> None:
    """Reacts to a new final decision (callback) and to a new policy violation (people).

    `agents`, when the caller has them loaded, spares a query for their callback URLs."""
    decided = [
        a
        for a in actions
        if a.decision_event_id and str(a.decision_event_id) != before[a.action_id][0]
    ]
    if decided:
        # chatops decides through apps.actions and the ingest imports this module: import late.
        from apps.chatops.hooks import action_decision_announce

        callback_deliveries_create(actions=decided, agents=agents)
        for action in decided:
            # A chat message asking for this decision loses its buttons, wherever it was made.
            transaction.on_commit(partial(action_decision_announce, action.action_id))
    recent = timezone.now() - VIOLATION_NOTIFY_WINDOW
    for action in actions:
        if (
            action.policy_violation
            and not before[action.action_id][1]
            and action.execution_started_at is not None
            and action.execution_started_at >= recent
        ):
            action_violation_notify(action=action)


# ---------- agent callbacks ----------


def callback_payload(action: Action) -> dict[str, Any]:
    """What the agent is told: the final decision, who made it, and under which policy."""
    version = action.policy_version
    return {
        "action_id": action.action_id,
        "status": action.decision,
        "reasons": list(action.decision_reasons or []),
        "policy_version": int(version) if version.isdigit() else None,
        "decided_by": action.decided_by,
        "decided_at": format_ts(action.decided_at) if action.decided_at else None,
        "decision_event_id": str(action.decision_event_id),
    }


def callback_body(action: Action) -> str:
    return json.dumps(callback_payload(action), separators=(",", ":"), sort_keys=True)


def callback_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix ts>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp lets the agent refuse
    replays of an old delivery; the HMAC proves it came from opsdash unchanged."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def callback_deliveries_create(
    *, actions: Sequence[Action], agents: Mapping[int, Agent] | None = None
) -> list[int]:
    """One delivery row per decision event for agents with a callback URL; sent after commit."""
    agent_ids = {a.agent_id for a in actions}
    if agents is not None and agent_ids <= agents.keys():
        urls = {pk: agents[pk].callback_url for pk in agent_ids if agents[pk].callback_url}
    else:
        urls = dict(
            Agent.objects.filter(pk__in=agent_ids)
            .exclude(callback_url="")
            .values_list("pk", "callback_url")
        )
    rows = [
        CallbackDelivery(
            agent_id=a.agent_id,
            action=a,
            decision_event_id=str(a.decision_event_id),
            url=urls[a.agent_id],
            body=callback_body(a),
        )
        for a in actions
        if a.agent_id in urls
    ]
    if not rows:
        return []
    # Unique per decision event: a replayed event or a retried batch adds no second delivery.
    CallbackDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    ids = list(
        CallbackDelivery.objects.filter(
            decision_event_id__in=[r.decision_event_id for r in rows],
            delivered_at__isnull=True,
            gave_up_at__isnull=True,
        ).values_list("pk", flat=True)
    )
    transaction.on_commit(lambda: _queue_deliveries(ids))
    return ids


def _queue_deliveries(ids: list[int]) -> None:
    from apps.actions.tasks import callback_deliver_task

    for pk in ids:
        enqueue(callback_deliver_task, pk)


def _callback_send(delivery: CallbackDelivery, now: datetime) -> PostOutcome:
    agent = Agent.objects.only("callback_url", "callback_secret").get(pk=delivery.agent_id)
    if not agent.callback_url:
        return PostOutcome(delivered=False, transient=False, error="The callback was removed.")
    if not agent.callback_secret:
        return PostOutcome(
            delivered=False, transient=False, error="The agent has no callback secret."
        )
    body = delivery.body.encode()
    headers = {
        SIGNATURE_HEADER: callback_signature(
            secret=agent.callback_secret, timestamp=int(now.timestamp()), body=body
        ),
        DELIVERY_HEADER: str(delivery.decision_event_id),
    }
    return post_bytes(delivery.url, body, headers)


def callback_delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> float | None:
    """One attempt; the seconds until the next one, or None when delivered, given up or taken."""
    return outbound_attempt(
        CallbackDelivery,
        pk=delivery_id,
        send=_callback_send,
        max_attempts=settings.CALLBACK_MAX_ATTEMPTS,
        now=now,
    )


# ---------- setting an agent's callback (admins) ----------


def callback_url_check(url: str) -> str:
    """The URL as it will be stored, or a ValidationError a person can act on."""
    url = url.strip()
    if not url.lower().startswith("https://") and not settings.DEBUG:
        raise ValidationError("Use an https:// URL: the callback carries decisions.")
    refusal = url_refusal(url)
    if refusal:
        raise ValidationError(refusal)
    return url


def callback_secret_generate() -> str:
    return secrets.token_hex(32)


@transaction.atomic
def agent_callback_set(*, agent: Agent, url: str) -> str | None:
    """Sets the callback URL; returns a new secret when the agent had none (shown once)."""
    agent.callback_url = callback_url_check(url)
    new_secret = None
    if not agent.callback_secret:
        new_secret = agent.callback_secret = callback_secret_generate()
    agent.save(update_fields=["callback_url", "callback_secret"])
    return new_secret


@transaction.atomic
def agent_callback_secret_rotate(*, agent: Agent) -> str:
    """A new secret, effective from the next attempt (retries of old deliveries included)."""
    agent.callback_secret = callback_secret_generate()
    agent.save(update_fields=["callback_secret"])
    return agent.callback_secret


@transaction.atomic
def agent_callback_clear(*, agent: Agent) -> None:
    """No more callbacks: pending retries stop at their next attempt."""
    agent.callback_url = ""
    agent.callback_secret = ""
    agent.save(update_fields=["callback_url", "callback_secret"])


# ---------- policy violations ----------


def action_violation_notify(*, action: Action) -> None:
    """Approvers, SRE leads and the agent's owners learn at once, once per action."""
    agent = Agent.objects.select_related("team").get(pk=action.agent_id)
    what = action.action_type or "an action"
    where = f" on {action.target}" if action.target else ""
    state = {
        "": "never proposed or decided",
        "rejected": f"rejected by {action.decided_by or 'a person'}",
        "denied": "denied by the policy",
        "recorded": "recorded in observe mode, never to run",
        "expired": "expired undecided",
    }.get(action.decision, f"{action.decision or 'pending'}")
    if not action.decision and action.proposed_at is not None:
        state = "still waiting for approval"
    if action.decision == "approved" and action.decided_at and action.execution_started_at:
        state = "approved only after it started"
    started = (
        f"{action.execution_started_at:%Y-%m-%d %H:%M:%S} UTC"
        if action.execution_started_at
        else "an unknown time"
    )
    notify(
        kind="policy_violation",
        title=f"Policy violation: {agent.slug} executed {what}{where} without approval",
        body=(
            f"Action {action.action_id} was reported executing at {started}, but it was "
            f"{state}. The execution is kept in the audit log; see who ran it and why."
        ),
        url=action_path(action.action_id),
        roles=(APPROVER, SRE_LEAD),
        agent=agent,
        dedup_key=f"violation:{action.action_id}",
    )
