"""Turning one raw event into a validated, scrubbed, hashed PreparedEvent (or an ItemError).

The hot path of ingest: msgspec instead of DRF serializers, one walk over `data`.
"""

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from django.conf import settings
from django.utils import timezone

from apps.audit.canonical import canonical_event, content_hash, encode_json
from apps.audit.models import EventType
from apps.audit.schemas import EventIn, decode_envelope, validate_data
from apps.audit.scrubbing import scrub_field, scrub_text
from apps.fleet.models import Agent

ALL_TYPES = frozenset(EventType.values)
_MSGSPEC_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_FIELD_IN_MSG = re.compile(r"(?:missing required field|unknown field) `(?P<name>[^`]+)`")


class ItemError(Exception):
    """One event of a batch is refused; the others go on."""

    def __init__(self, errors: dict[str, list[str]], event_id: str | None = None) -> None:
        super().__init__(errors)
        self.errors = errors
        self.event_id = event_id


@dataclass
class PreparedEvent:
    index: int
    event_id: uuid.UUID
    ts: datetime
    agent: Agent
    event_type: str
    action_id: str | None
    incident_id: str | None
    agent_version: str
    prompt_version: str
    data: dict[str, Any]
    data_json: str
    content_hash: str
    size_bytes: int


def msgspec_errors(exc: Exception, prefix: str = "") -> dict[str, list[str]]:
    """Turns msgspec's one-line message into {"field.path": ["message"]}."""
    text = str(exc)
    match = _MSGSPEC_PATH.match(text)
    message, path = (match.group("msg"), match.group("path")) if match else (text, "")
    path = (path or "").lstrip(".")
    named = _FIELD_IN_MSG.search(message)
    if named:
        name = named.group("name")
        path = f"{path}.{name}" if path else name
        if "missing required field" in message:
            message = "This field is required."
        else:
            message = "Unknown field; check its spelling against the API schema."
    key = ".".join(p for p in (prefix, path) if p) or "non_field_errors"
    return {key: [message]}


def _peek_id(raw: bytes) -> str | None:
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value["id"][:64]
    return None


def _scrub_normalise(value: Any) -> Any:
    """Scrubs every string and stores integral floats as ints (see apps.audit.canonical)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("Text may not contain NUL (\\u0000) characters.")
        return scrub_text(value)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if "\x00" in k:
                raise ValueError("Keys may not contain NUL (\\u0000) characters.")
            if isinstance(v, str):
                if "\x00" in v:
                    raise ValueError("Text may not contain NUL (\\u0000) characters.")
                # {"password": "hunter2"} has no label inside the string: the key is the label.
                out[k] = scrub_field(k, v)
            else:
                out[k] = _scrub_normalise(v)
        return out
    if isinstance(value, list):
        return [_scrub_normalise(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _llm_tokens_check(typed: Any) -> None:
    writes = typed.cache_creation_input_tokens
    if typed.cache_creation_1h_input_tokens > writes:
        raise ItemError(
            {
                "data.cache_creation_1h_input_tokens": [
                    "The 1-hour cache writes are part of cache_creation_input_tokens (all cache "
                    f"writes), so they cannot exceed it ({writes})."
                ]
            }
        )
    cached = writes + typed.cache_read_input_tokens
    if typed.usage_convention == "otel" and typed.input_tokens < cached:
        raise ItemError(
            {
                "data.input_tokens": [
                    "With usage_convention otel, input_tokens includes cache reads and writes, "
                    f"so it cannot be less than their sum ({cached}). Anthropic's counts "
                    "exclude them: send usage_convention anthropic."
                ]
            }
        )


def _post_validate(event_type: str, data: dict[str, Any], typed: Any) -> None:
    """Rules the schema cannot say; money is kept as a decimal string, never a float."""
    if event_type == EventType.LLM_CALL:
        _llm_tokens_check(typed)
    cost = getattr(typed, "cost_usd", None)
    if cost is not None:
        if not cost.is_finite() or cost < 0:
            raise ItemError({"data.cost_usd": ["Must be a non-negative amount in USD."]})
        data["cost_usd"] = str(cost.quantize(Decimal("0.000000001")).normalize())
        if "E" in data["cost_usd"]:
            data["cost_usd"] = format(cost.quantize(Decimal("0.000000001")), "f")


class EventPreparer:
    """Validates and scrubs one raw event; reusable across the items of a batch."""

    def __init__(
        self,
        *,
        source: str,
        token_agent: Agent | None,
        allowed_types: frozenset[str],
        agents_by_slug: Callable[[str], Agent | None] | None = None,
        now: datetime | None = None,
    ) -> None:
        self.source = source
        self.token_agent = token_agent
        self.allowed_types = allowed_types
        self.agents_by_slug = agents_by_slug
        self.now = now or timezone.now()
        self.max_event_bytes = settings.INGEST_MAX_EVENT_BYTES
        self.latest_allowed = self.now + timedelta(seconds=settings.INGEST_MAX_FUTURE_SKEW_SECONDS)

    def prepare(self, index: int, raw: bytes) -> PreparedEvent:
        size = len(raw)
        if size > self.max_event_bytes:
            raise ItemError(
                {
                    "non_field_errors": [
                        f"Event is {size} bytes; the limit is {self.max_event_bytes} bytes per event."
                    ]
                },
                _peek_id(raw),
            )
        try:
            envelope: EventIn = decode_envelope(raw)
        except msgspec.ValidationError as exc:  # a subclass of DecodeError: catch it first
            raise ItemError(msgspec_errors(exc), _peek_id(raw)) from exc
        except msgspec.DecodeError as exc:
            raise ItemError({"non_field_errors": [f"Not valid JSON: {exc}"]}) from exc
        event_id = str(envelope.id)

        if envelope.type not in ALL_TYPES:
            raise ItemError(
                {
                    "type": [
                        f"Unknown event type {envelope.type!r}; see the API schema for the list."
                    ]
                },
                event_id,
            )
        if envelope.type not in self.allowed_types:
            hint = (
                " Propose actions with POST /api/v1/actions."
                if envelope.type == EventType.PROPOSAL
                else ""
            )
            raise ItemError(
                {"type": [f"Events of type {envelope.type!r} are written by opsdash only.{hint}"]},
                event_id,
            )
        agent = self._agent(envelope.agent, event_id)
        if envelope.ts > self.latest_allowed:
            raise ItemError(
                {
                    "ts": [
                        f"ts is in the future by more than {settings.INGEST_MAX_FUTURE_SKEW_SECONDS} s "
                        "(check the agent's clock); past timestamps are always accepted."
                    ]
                },
                event_id,
            )
        data = envelope.data
        try:
            typed = validate_data(envelope.type, data)
        except msgspec.ValidationError as exc:
            raise ItemError(msgspec_errors(exc, prefix="data"), event_id) from exc
        if typed is not None:
            _post_validate(envelope.type, data, typed)
        try:
            data = _scrub_normalise(data)
        except ValueError as exc:
            raise ItemError({"data": [str(exc)]}, event_id) from exc
        for name in ("action_id", "incident_id", "agent_version", "prompt_version"):
            text = getattr(envelope, name)
            if text and "\x00" in text:
                raise ItemError({name: ["May not contain NUL (\\u0000) characters."]}, event_id)

        canonical = canonical_event(
            event_id=event_id,
            ts=envelope.ts,
            agent_slug=agent.slug,
            event_type=envelope.type,
            action_id=envelope.action_id,
            incident_id=envelope.incident_id,
            agent_version=envelope.agent_version,
            prompt_version=envelope.prompt_version,
            data=data,
            source=self.source,
        )
        return PreparedEvent(
            index=index,
            event_id=envelope.id,
            ts=envelope.ts,
            agent=agent,
            event_type=envelope.type,
            action_id=envelope.action_id,
            incident_id=envelope.incident_id,
            agent_version=envelope.agent_version,
            prompt_version=envelope.prompt_version,
            data=data,
            data_json=encode_json(data).decode(),
            content_hash=content_hash(canonical),
            size_bytes=size,
        )

    def _agent(self, slug: str, event_id: str) -> Agent:
        if self.token_agent is not None:
            if slug != self.token_agent.slug:
                raise ItemError(
                    {
                        "agent": [
                            f"This token belongs to agent {self.token_agent.slug!r}; "
                            f"it cannot write events of {slug!r}."
                        ]
                    },
                    event_id,
                )
            return self.token_agent
        agent = self.agents_by_slug(slug) if self.agents_by_slug else None
        if agent is None:
            raise ItemError({"agent": [f"No agent {slug!r}; create it first."]}, event_id)
        return agent


def agent_lookup_cache() -> Callable[[str], Agent | None]:
    cache: dict[str, Agent | None] = {}

    def lookup(slug: str) -> Agent | None:
        if slug not in cache:
            cache[slug] = Agent.objects.select_related("team").filter(slug=slug).first()
        return cache[slug]

    return lookup
