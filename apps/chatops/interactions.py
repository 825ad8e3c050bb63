"""A click or a submitted dialog in Slack, turned into the same decision the web UI makes.

Rules and records are action_decide's: the same votes, refusals and `approval` event, with
the comment "via Slack". Each interaction is claimed by its trigger_id in the decision's
transaction, so a delivery Slack retries (X-Slack-Retry-Num) is answered without deciding or
messaging twice. Slack waits 3 s: the decision is made in the request; updating the message
and answering refusals go to Celery after the commit.
"""

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import transaction

from apps.actions.decide import DecisionRefused, action_decide
from apps.actions.models import Action, ActionStatus
from apps.chatops.messages import (
    APPROVE_ACTION_ID,
    REASON_BLOCK_ID,
    REASON_INPUT_ID,
    REASON_MAX_CHARS,
    REJECT_ACTION_ID,
    REJECT_CALLBACK_ID,
    VIA_SLACK,
    action_url,
    reject_modal,
)
from apps.chatops.payloads import (
    BlockActionsPayload,
    MalformedPayload,
    RejectContext,
    ViewSubmissionPayload,
    block_actions_decode,
    payload_type,
    reject_context_decode,
    reject_context_encode,
    view_submission_decode,
)
from apps.chatops.services import ChatRefused, slack_interaction_claim, slack_person_resolve
from apps.chatops.slack import (
    IN_REQUEST_TIMEOUT,
    SlackConfig,
    SlackRefused,
    SlackUnavailable,
    slack_errors,
    slack_web_client,
)
from apps.chatops.tasks import (
    slack_ephemeral_send_task,
    slack_message_refresh_task,
    task_queue,
)

logger = logging.getLogger(__name__)

REASON_NEEDED = "A rejection needs a reason the agent's owners can act on."


@dataclass
class InteractionReply:
    """What the endpoint answers Slack: nothing (200), or a JSON body (dialog errors)."""

    body: dict[str, Any] | None = None


def _tell(response_url: str, text: str, *, icon: str = ":no_entry:") -> None:
    """An ephemeral note to the person who clicked, sent after the decision commits."""
    if response_url:
        transaction.on_commit(
            partial(task_queue, slack_ephemeral_send_task, response_url, f"{icon} {text}")
        )
    else:
        logger.warning("a Slack refusal had no response_url to answer: %s", text)


def _refresh(action_id: str) -> None:
    """For what the read model does not announce itself: a vote short of final, a refusal."""
    transaction.on_commit(partial(task_queue, slack_message_refresh_task, action_id))


def slack_interaction_handle(*, config: SlackConfig, payload: str) -> InteractionReply:
    """Handles one verified interaction payload (the form field's JSON)."""
    kind = payload_type(payload)
    if kind == "block_actions":
        return _block_actions(config, block_actions_decode(payload))
    if kind == "view_submission":
        return _view_submission(config, view_submission_decode(payload))
    # Other interactions (view_closed, shortcuts) are not opsdash's: acknowledged, ignored.
    return InteractionReply()


def _person(config: SlackConfig, slack_user_id: str) -> tuple[Any, str]:
    try:
        return slack_person_resolve(config=config, slack_user_id=slack_user_id), ""
    except ChatRefused as exc:
        return None, str(exc)


def _already_decided(action: Action) -> str:
    who = f" by {action.decided_by}" if action.decided_by else ""
    return f"Already decided: {action.get_status_display().lower()}{who}."


def _block_actions(config: SlackConfig, payload: BlockActionsPayload) -> InteractionReply:
    clicked = next(
        (a for a in payload.actions if a.action_id in (APPROVE_ACTION_ID, REJECT_ACTION_ID)),
        None,
    )
    if clicked is None:
        return InteractionReply()
    if not clicked.value:
        raise MalformedPayload(f"The {clicked.action_id} button carries no action id.")
    action_id, response_url = clicked.value, payload.response_url
    # Looked up before the transaction: users.info may take a moment and holds no lock.
    person, refusal = _person(config, payload.user.id)
    with transaction.atomic():
        interaction = slack_interaction_claim(
            key=f"block_actions:{payload.trigger_id}", slack_user_id=payload.user.id
        )
        if interaction is None:
            logger.info("Slack redelivered interaction %s: already handled", payload.trigger_id)
            return InteractionReply()
        if refusal:
            outcome = refusal
            _tell(response_url, refusal)
        elif clicked.action_id == APPROVE_ACTION_ID:
            try:
                decided = action_decide(
                    action_id=action_id, user=person, approve=True, comment=VIA_SLACK
                )
                outcome = decided.action.status if decided.final else "approve"
                if not decided.final and decided.votes >= max(decided.action.approvers_required, 1):
                    _tell(
                        response_url,
                        "Your approval counts, but the agent's owners cannot be its only "
                        "approvers: one approver who does not own it is still needed.",
                        icon=":information_source:",
                    )
                if not decided.final:
                    _refresh(action_id)  # "1 of 2"; a final decision refreshes via the read model
            except DecisionRefused as exc:
                outcome = str(exc)
                _tell(response_url, outcome)
                _refresh(action_id)
        else:
            outcome = _reject_dialog_open(config, payload, action_id)
        interaction.outcome = outcome[:500]
        interaction.save(update_fields=["outcome"])
    return InteractionReply()


def _reject_dialog_open(config: SlackConfig, payload: BlockActionsPayload, action_id: str) -> str:
    """Opens the dialog asking for the reason; the trigger_id is valid for 3 s, so now."""
    action = Action.objects.select_related("agent").filter(action_id=action_id).first()
    if action is None:
        _tell(payload.response_url, f"No action {action_id!r}.")
        return "no such action"
    if action.status != ActionStatus.PENDING_APPROVAL:
        refusal = _already_decided(action)
        _tell(payload.response_url, refusal)
        _refresh(action_id)
        return refusal
    context = RejectContext(
        action_id=action_id,
        response_url=payload.response_url,
        channel=payload.container.channel_id,
        message_ts=payload.container.message_ts,
    )
    view = reject_modal(action, private_metadata=reject_context_encode(context))
    try:
        with slack_errors("views.open"):
            slack_web_client(config, timeout=IN_REQUEST_TIMEOUT).views_open(
                trigger_id=payload.trigger_id, view=view
            )
    except (SlackUnavailable, SlackRefused) as exc:
        _tell(
            payload.response_url,
            f"The reason dialog did not open ({exc}). Reject on the action's page: "
            f"{action_url(action_id)}",
        )
        return f"dialog failed: {exc}"
    return "dialog"


def _view_submission(config: SlackConfig, payload: ViewSubmissionPayload) -> InteractionReply:
    view = payload.view
    if view.callback_id != REJECT_CALLBACK_ID:
        return InteractionReply()
    context = reject_context_decode(view.private_metadata)
    field = view.state.values.get(REASON_BLOCK_ID, {}).get(REASON_INPUT_ID)
    reason = ((field.value if field else None) or "").strip()
    if not reason or len(reason) > REASON_MAX_CHARS:
        problem = REASON_NEEDED if not reason else f"At most {REASON_MAX_CHARS} characters."
        return InteractionReply(
            body={"response_action": "errors", "errors": {REASON_BLOCK_ID: problem}}
        )
    person, refusal = _person(config, payload.user.id)
    with transaction.atomic():
        interaction = slack_interaction_claim(
            key=f"view_submission:{payload.trigger_id}", slack_user_id=payload.user.id
        )
        if interaction is None:
            return InteractionReply()
        if not refusal:
            try:
                decided = action_decide(
                    action_id=context.action_id,
                    user=person,
                    approve=False,
                    reason=reason,
                    comment=VIA_SLACK,
                )
                outcome = decided.action.status
            except DecisionRefused as exc:
                refusal = str(exc)
                _refresh(context.action_id)
        reply = InteractionReply()
        if refusal:
            outcome = refusal
            if context.response_url:
                _tell(context.response_url, refusal)
            else:  # no message to answer under: say it in the dialog instead
                reply.body = {"response_action": "errors", "errors": {REASON_BLOCK_ID: refusal}}
        interaction.outcome = outcome[:500]
        interaction.save(update_fields=["outcome"])
    return reply
