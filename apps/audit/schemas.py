"""Wire schemas of audit events, validated with msgspec on the ingest hot path.

Unknown keys inside `data` are kept (agents may send more than we model); unknown keys on the
envelope are refused, since a misspelt `action_id` would silently break correlation.
"""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from apps.audit.models import EventType

ShortText = Annotated[str, Meta(max_length=200)]
Slug = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[-a-zA-Z0-9_]+$")]
Ident = Annotated[str, Meta(min_length=1, max_length=128)]
Version = Annotated[str, Meta(max_length=64)]
NonNegInt = Annotated[int, Meta(ge=0, le=10**12)]
NonNegFloat = Annotated[float, Meta(ge=0)]
Risk = Literal["low", "medium", "high", "critical"]


class EventIn(Struct, forbid_unknown_fields=True):
    """The envelope every event shares."""

    id: uuid.UUID
    ts: Annotated[datetime, Meta(tz=True)]
    agent: Slug
    type: Annotated[str, Meta(max_length=32)]
    data: dict[str, Any] = {}
    action_id: Ident | None = None
    incident_id: Ident | None = None
    agent_version: Version = ""
    prompt_version: Version = ""


class AlertData(Struct):
    name: Annotated[str, Meta(min_length=1, max_length=500)]
    severity: Literal["critical", "high", "warning", "medium", "low", "info"] = "warning"
    source: ShortText = ""
    summary: str = ""
    labels: dict[str, str] = {}
    fired_at: Annotated[datetime, Meta(tz=True)] | None = None


class ContextData(Struct):
    source: Annotated[str, Meta(min_length=1, max_length=500)]
    query: str = ""
    summary: str = ""
    uri: str = ""
    bytes: NonNegInt = 0


class LlmCallData(Struct):
    """One model call. By default token counts follow Anthropic's usage block, where
    `input_tokens` excludes cache reads and writes; `usage_convention: "otel"` says they follow
    OpenTelemetry GenAI, where `input_tokens` (gen_ai.usage.input_tokens) includes them.
    `cache_creation_input_tokens` counts every cache write; `cache_creation_1h_input_tokens`
    the part of them with a 1-hour TTL. Without `cost_usd`, opsdash prices the call from its
    price table (apps.costs)."""

    model: Annotated[str, Meta(min_length=1, max_length=200)]
    input_tokens: NonNegInt
    output_tokens: NonNegInt
    latency_ms: NonNegFloat
    provider: ShortText = "anthropic"
    cache_creation_input_tokens: NonNegInt = 0
    cache_creation_1h_input_tokens: NonNegInt = 0
    cache_read_input_tokens: NonNegInt = 0
    usage_convention: Literal["anthropic", "otel"] = "anthropic"
    batch: Annotated[
        bool, Meta(description="Sent through the Message Batches API (batch-discounted).")
    ] = False
    region: (
        Annotated[
            str,
            Meta(max_length=64, description="Grid region of the inference, for gCO2e (e.g. `fr`)."),
        ]
        | None
    ) = None
    cost_usd: Decimal | None = None
    reservation_id: Ident | None = None
    stop_reason: ShortText | None = None
    request: Any = None
    response: Any = None


class ToolCallData(Struct):
    tool: Annotated[str, Meta(min_length=1, max_length=200)]
    arguments: Any = None
    result: Any = None
    status: Literal["ok", "error"] = "ok"
    error: str = ""
    latency_ms: NonNegFloat = 0.0
    cost_usd: Decimal | None = None


class ExecutionData(Struct):
    status: Literal["started", "succeeded", "failed"]
    detail: str = ""
    error: str = ""


class RollbackData(Struct):
    status: Literal["started", "succeeded", "failed"] = "succeeded"
    reason: str = ""


class OutcomeData(Struct):
    resolved: bool
    summary: str = ""
    resolved_by: Literal["agent", "human", "unknown"] = "unknown"


class NoteData(Struct):
    text: Annotated[str, Meta(min_length=1)]


class ProposalData(Struct):
    """What an agent proposes to do; the policy decides on it and an approval binds to it."""

    action_type: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=128,
            pattern=r"^[a-z0-9_.:-]+$",
            description="What to do, dotted, e.g. `k8s.restart_deployment` (policy globs match it).",
        ),
    ]
    target: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=1000,
            description="What it acts on, as a URI, e.g. `k8s://prod/payments/api`.",
        ),
    ]
    risk: Annotated[
        Risk,
        Meta(description="The agent's own risk claim; the policy may raise it, never lower it."),
    ]
    confidence: Annotated[
        float, Meta(ge=0, le=1, description="The agent's confidence that this fixes the problem.")
    ]
    env: Annotated[
        str, Meta(min_length=1, max_length=32, description="Environment, e.g. prod or staging.")
    ] = "prod"
    rationale: Annotated[
        str, Meta(description="Why, in the agent's words (shown to approvers).")
    ] = ""
    citations: Annotated[
        list[Any],
        Meta(description="Evidence: files, resources, log lines or metrics the rationale cites."),
    ] = []
    rollback_plan: Annotated[
        str | None, Meta(description="How to undo it; policies may require one.")
    ] = None
    parameters: Annotated[
        dict[str, Any],
        Meta(description="Arguments of the action (e.g. replicas); part of what is approved."),
    ] = {}


class PolicyDecisionData(Struct):
    decision: Literal["approved", "pending_approval", "denied", "recorded"]
    reasons: list[str] = []
    policy_version: int | str | None = None
    matched_rules: list[str] = []
    effective_risk: Risk | None = None
    approvers_required: Annotated[int, Meta(ge=0, le=10)] = 0
    separation_of_duties: bool = False
    # When a pending action notifies the escalation group, and when it expires undecided.
    escalate_at: Annotated[datetime, Meta(tz=True)] | None = None
    expires_at: Annotated[datetime, Meta(tz=True)] | None = None


class ApprovalData(Struct):
    """A person's decision. `approve` is one vote towards the approvers a policy requires;
    `approved` is the final decision (the last vote, or a one-approver action)."""

    decision: Literal["approve", "approved", "rejected", "expired"]
    by: ShortText = ""
    reason: str = ""
    comment: str = ""
    proposal_hash: str = ""


class VerdictData(Struct):
    correct: bool
    by: ShortText = ""
    note: str = ""


DATA_SCHEMAS: dict[str, type[Struct] | None] = {
    EventType.ALERT: AlertData,
    EventType.CONTEXT: ContextData,
    EventType.LLM_CALL: LlmCallData,
    EventType.TOOL_CALL: ToolCallData,
    EventType.EXECUTION: ExecutionData,
    EventType.ROLLBACK: RollbackData,
    EventType.OUTCOME: OutcomeData,
    EventType.NOTE: NoteData,
    EventType.PROPOSAL: ProposalData,
    EventType.POLICY_DECISION: PolicyDecisionData,
    EventType.APPROVAL: ApprovalData,
    EventType.VERDICT: VerdictData,
    # Written by later features; free-form until they define their shape.
    EventType.HALT: None,
    EventType.RESUME: None,
    EventType.BUDGET_THRESHOLD: None,
    EventType.AUTONOMY_CHANGE: None,
    EventType.TOKEN_CHANGE: None,
}

_envelope_decoder = msgspec.json.Decoder(EventIn)
_batch_decoder = msgspec.json.Decoder(list[msgspec.Raw])


def decode_batch(body: bytes) -> list[msgspec.Raw]:
    return _batch_decoder.decode(body)


def decode_envelope(raw: bytes | msgspec.Raw) -> EventIn:
    return _envelope_decoder.decode(raw)


def validate_data(event_type: str, data: dict[str, Any]) -> Struct | None:
    schema = DATA_SCHEMAS.get(event_type)
    if schema is None:
        return None
    return msgspec.convert(data, schema)


def json_schema_for_docs() -> dict[str, Any]:
    """JSON Schema of the envelope and of each type's data, for the OpenAPI document."""
    schemas = [EventIn] + [s for s in DATA_SCHEMAS.values() if s is not None]
    (_, components) = msgspec.json.schema_components(
        schemas, ref_template="#/components/schemas/{name}"
    )
    return components
