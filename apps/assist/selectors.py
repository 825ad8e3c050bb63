"""Reads for the assistant: an action's provenance as scrubbed text for a prompt."""

import json
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q

from apps.actions.flags import actions_flags
from apps.actions.models import Action
from apps.assist.models import ActionExplanation
from apps.audit.models import Event, EventType
from apps.audit.scrubbing import scrub_text, scrub_value

# Bounds that keep a prompt (and the llm_call event that records it) well under the ingest
# limit of 256 KB per event, whatever the agents sent.
MAX_EVENTS = 120
MAX_INCIDENT_ALERTS = 20
MAX_FIELD_CHARS = 600
MAX_PROMPT_CHARS = 60_000


def explanation_latest(*, action: Action) -> ActionExplanation | None:
    """The newest explanation of the action's current proposal, if one was paid for already."""
    return (
        ActionExplanation.objects.filter(action=action, proposal_hash=action.proposal_hash)
        .select_related("created_by")
        .first()
    )


def _clip(value: Any, limit: int = MAX_FIELD_CHARS) -> str:
    """One scrubbed, single-spaced, bounded string: agents' data goes through the scrubber again
    here because not every row came through ingest (imports, older rows, hand repairs)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(scrub_value(value), ensure_ascii=False, sort_keys=True, default=str)
    text = " ".join(scrub_text(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ts(value: datetime | None) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if value else "—"


def _event_line(event_type: str, ts: datetime, data: dict[str, Any]) -> str:
    at = f"{ts.astimezone(UTC):%H:%M:%S}"
    d = data if isinstance(data, dict) else {}
    if event_type == EventType.ALERT:
        return (
            f"{at} alert {_clip(d.get('name'))} ({_clip(d.get('severity'))}) from "
            f"{_clip(d.get('source')) or '?'}: {_clip(d.get('summary'))}"
        )
    if event_type == EventType.CONTEXT:
        parts = [f"{at} context read from {_clip(d.get('source'))}"]
        for key in ("query", "uri", "summary"):
            if d.get(key):
                parts.append(f"{key}: {_clip(d.get(key))}")
        extra = {k: v for k, v in d.items() if k not in ("source", "query", "uri", "summary")}
        if extra:
            parts.append(f"data: {_clip(extra)}")
        return "; ".join(parts)
    if event_type == EventType.LLM_CALL:
        return (
            f"{at} LLM call {_clip(d.get('model'))}: {d.get('input_tokens', '?')} input / "
            f"{d.get('output_tokens', '?')} output tokens, {d.get('latency_ms', '?')} ms; "
            f"answer (excerpt): {_clip(d.get('response'), 400)}"
        )
    if event_type == EventType.TOOL_CALL:
        return (
            f"{at} tool call {_clip(d.get('tool'))} ({_clip(d.get('status') or 'ok')}): "
            f"arguments {_clip(d.get('arguments'), 200)}; result {_clip(d.get('result'), 400)}"
            + (f"; error {_clip(d.get('error'))}" if d.get("error") else "")
        )
    if event_type == EventType.PROPOSAL:
        return f"{at} proposal recorded (details above)"
    if event_type == EventType.POLICY_DECISION:
        return (
            f"{at} policy decision: {_clip(d.get('decision'))} (policy v"
            f"{_clip(d.get('policy_version')) or '?'}); reasons: {_clip(d.get('reasons'))}; "
            f"matched rules: {_clip(d.get('matched_rules'))}"
        )
    if event_type == EventType.APPROVAL:
        return (
            f"{at} approval: {_clip(d.get('decision'))} by {_clip(d.get('by')) or '?'}"
            + (f"; reason: {_clip(d.get('reason'))}" if d.get("reason") else "")
            + (f"; comment: {_clip(d.get('comment'))}" if d.get("comment") else "")
        )
    return f"{at} {event_type}: {_clip(d)}"


def action_provenance_text(*, action: Action) -> str:
    """The action's provenance as plain text, every string scrubbed, size bounded.

    Two queries for the events (the action's own, then its incident's alerts) and one for the
    hallucination flags, which the explanation should address.
    """
    events = list(
        Event.objects.filter(action_id=action.action_id)
        .order_by("ts", "id")
        .values_list("id", "ts", "type", "data")[:MAX_EVENTS]
    )
    seen = {e[0] for e in events}
    if action.incident_id:
        incident_alerts = (
            Event.objects.filter(
                Q(incident_id=action.incident_id, type__in=[EventType.ALERT, EventType.CONTEXT])
            )
            .exclude(action_id=action.action_id)
            .order_by("ts", "id")
            .values_list("id", "ts", "type", "data")[:MAX_INCIDENT_ALERTS]
        )
        events += [e for e in incident_alerts if e[0] not in seen]
        events.sort(key=lambda e: (e[1], str(e[0])))
    flags = actions_flags([action])[action.action_id]

    agent = action.agent
    lines = [
        f"Action {_clip(action.action_id)} proposed by agent {_clip(agent.slug)} "
        f"(team {_clip(agent.team.slug)}, autonomy {agent.autonomy_mode}) at "
        f"{_ts(action.proposed_at)}; incident {_clip(action.incident_id) or 'none'}.",
        f"Status now: {action.status}.",
        f"Action type: {_clip(action.action_type)}; target: {_clip(action.target)}; "
        f"environment: {_clip(action.env)}.",
        f"Risk claimed by the agent: {action.risk or '?'}; effective risk after policy: "
        f"{action.effective_risk or action.risk or '?'}; confidence: "
        f"{'?' if action.confidence is None else f'{action.confidence:.2f}'}.",
        f"Rationale: {_clip(action.rationale, 2000)}",
        f"Citations: {_clip(action.citations, 2000)}",
        f"Rollback plan: {_clip(action.rollback_plan) or 'none given'}",
        f"Parameters: {_clip(action.parameters)}",
        (
            f"Decision: {action.decision} by {_clip(action.decided_by) or '?'}"
            if action.decision
            else "Decision: none yet"
        )
        + f" (policy v{action.policy_version or '?'}); reasons: {_clip(action.decision_reasons)};"
        f" approvers required: {action.approvers_required}.",
        f"Approvals so far: {_clip(action.approvals)}",
        "",
        "Hallucination flags raised by opsdash's own checks:",
        *([f"- {_clip(f.message)} ({_clip(f.checked)})" for f in flags] or ["- none"]),
        "",
        "Timeline (UTC):",
        *[f"- {_event_line(t, ts, data)}" for _, ts, t, data in events],
    ]
    text = "\n".join(lines)
    if len(text) > MAX_PROMPT_CHARS:
        text = text[:MAX_PROMPT_CHARS] + "\n[provenance cut here to bound the prompt]"
    # Once more over the whole text: a reference split across fields or a value assembled
    # from pieces must not slip through.
    return scrub_text(text)
