"""The parts of Slack's interaction payloads opsdash reads, checked for shape on the way in.

Unknown fields are ignored (Slack adds fields over time); a missing or mistyped field we
need is a 400 naming it.
"""

from typing import Annotated, TypeVar

import msgspec
from msgspec import Meta, Struct

T = TypeVar("T")
SlackId = Annotated[str, Meta(min_length=1, max_length=64)]


class MalformedPayload(Exception):
    """The request is signed but its payload is not what Slack sends: a 400 with the reason."""


class _Envelope(Struct):
    type: Annotated[str, Meta(max_length=64)]


class SlackUser(Struct):
    id: SlackId


class SlackContainer(Struct):
    type: str = ""
    channel_id: str = ""
    message_ts: str = ""


class SlackTeam(Struct):
    id: str = ""


class BlockAction(Struct):
    action_id: Annotated[str, Meta(max_length=255)]
    block_id: str = ""
    value: Annotated[str, Meta(max_length=2000)] = ""
    action_ts: str = ""


class BlockActionsPayload(Struct):
    user: SlackUser
    trigger_id: Annotated[str, Meta(min_length=1, max_length=255)]
    actions: list[BlockAction]
    response_url: Annotated[str, Meta(max_length=2000)] = ""
    container: SlackContainer = msgspec.field(default_factory=SlackContainer)
    team: SlackTeam | None = None


class StateValue(Struct):
    value: Annotated[str, Meta(max_length=20_000)] | None = None


class ViewState(Struct):
    values: dict[str, dict[str, StateValue]] = msgspec.field(default_factory=dict)


class SubmittedView(Struct):
    id: str
    callback_id: str = ""
    private_metadata: Annotated[str, Meta(max_length=3000)] = ""
    state: ViewState = msgspec.field(default_factory=ViewState)


class ViewSubmissionPayload(Struct):
    user: SlackUser
    trigger_id: Annotated[str, Meta(min_length=1, max_length=255)]
    view: SubmittedView


class RejectContext(Struct):
    """What the reject dialog carries in private_metadata from the click to the submission."""

    action_id: Annotated[str, Meta(min_length=1, max_length=128)]
    response_url: str = ""
    channel: str = ""
    message_ts: str = ""


def _decode(raw: str | bytes, kind: type[T], what: str) -> T:
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise MalformedPayload(f"The {what} is not a Slack interaction payload: {exc}.") from exc
    except msgspec.DecodeError as exc:
        raise MalformedPayload(f"The {what} is not valid JSON: {exc}.") from exc


def payload_type(raw: str) -> str:
    return _decode(raw, _Envelope, "payload").type


def block_actions_decode(raw: str) -> BlockActionsPayload:
    return _decode(raw, BlockActionsPayload, "block_actions payload")


def view_submission_decode(raw: str) -> ViewSubmissionPayload:
    return _decode(raw, ViewSubmissionPayload, "view_submission payload")


def reject_context_decode(raw: str) -> RejectContext:
    return _decode(raw, RejectContext, "dialog's private_metadata")


def reject_context_encode(context: RejectContext) -> str:
    return msgspec.json.encode(context).decode()
