"""Block Kit for the approval request, its updates and the reject dialog."""

from datetime import datetime
from typing import Any

from django.conf import settings

from apps.actions.models import Action, ActionStatus, action_path
from apps.chatops.selectors import ApprovalProgress

APPROVE_ACTION_ID = "opsdash_approve"
REJECT_ACTION_ID = "opsdash_reject"
DECISION_BLOCK_ID = "opsdash_decision"
REJECT_CALLBACK_ID = "opsdash_reject_reason"
REASON_BLOCK_ID = "reason"
REASON_INPUT_ID = "reason"
REASON_MAX_CHARS = 2000
RATIONALE_MAX_CHARS = 600
TARGET_MAX_CHARS = 300
# Written into the approval event's comment, so the record says where the decision came from.
VIA_SLACK = "via Slack"


def mrkdwn_escape(text: str) -> str:
    """Agent-written text must not become a Slack mention (<!channel>) or a disguised link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def action_url(action_id: str) -> str:
    return f"{settings.SITE_URL}{action_path(action_id)}"


def _slack_date(when: datetime) -> str:
    fallback = when.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _needed(action: Action, progress: ApprovalProgress) -> str:
    text = "1 approver" if progress.required == 1 else f"{progress.required} distinct approvers"
    if action.separation_of_duties:
        text += ", one not owning the agent"
    return text


def _what(action: Action) -> str:
    target = mrkdwn_escape(truncate(action.target, TARGET_MAX_CHARS))
    return f"`{mrkdwn_escape(action.action_type)}` on `{target}`"


def _status_line(action: Action, progress: ApprovalProgress) -> str:
    who = ", ".join(progress.voters)
    if action.status == ActionStatus.PENDING_APPROVAL:
        if progress.votes:
            return (
                f":hourglass_flowing_sand: *{progress.votes} of {progress.required} approvals* "
                f"(approved by {who}) for {_what(action)}"
            )
        return f":hourglass_flowing_sand: *Approval needed* for {_what(action)}"
    if action.status == ActionStatus.REJECTED:
        reason = "; ".join(action.decision_reasons) or "no reason recorded"
        return (
            f":x: *Rejected* by {action.decided_by or 'someone'}: "
            f"{mrkdwn_escape(truncate(reason, RATIONALE_MAX_CHARS))} — {_what(action)}"
        )
    if action.status == ActionStatus.APPROVED or action.decision == ActionStatus.APPROVED:
        by = who or action.decided_by or "the policy"
        return f":white_check_mark: *Approved* by {by} — {_what(action)}"
    return f"*{action.get_status_display()}* — {_what(action)}"


def approval_message(action: Action, progress: ApprovalProgress) -> dict[str, Any]:
    """chat.postMessage / chat.update arguments (text and blocks) for the action as it is now."""
    pending = action.status == ActionStatus.PENDING_APPROVAL
    risk = action.effective_risk or action.risk or "unknown"
    fields = [
        ("Agent", mrkdwn_escape(action.agent.slug)),
        ("Action", f"`{mrkdwn_escape(action.action_type)}`"),
        ("Target", f"`{mrkdwn_escape(truncate(action.target, TARGET_MAX_CHARS))}`"),
        ("Environment", mrkdwn_escape(action.env) or "—"),
        ("Effective risk", risk),
        ("Confidence", "—" if action.confidence is None else f"{action.confidence:.0%}"),
        ("Votes needed", _needed(action, progress)),
        ("Expires", _slack_date(action.expires_at) if action.expires_at else "never"),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _status_line(action, progress)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{label}*\n{value}"} for label, value in fields
            ],
        },
    ]
    if action.rationale:
        rationale = mrkdwn_escape(truncate(action.rationale, RATIONALE_MAX_CHARS))
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Rationale*\n{rationale}"}}
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"<{action_url(action.action_id)}|Open in opsdash> · "
                    f"action `{mrkdwn_escape(action.action_id)}`",
                }
            ],
        }
    )
    if pending:
        blocks.append(
            {
                "type": "actions",
                "block_id": DECISION_BLOCK_ID,
                "elements": [
                    {
                        "type": "button",
                        "action_id": APPROVE_ACTION_ID,
                        "text": {"type": "plain_text", "text": "Approve"},
                        "style": "primary",
                        "value": action.action_id,
                    },
                    {
                        "type": "button",
                        "action_id": REJECT_ACTION_ID,
                        "text": {"type": "plain_text", "text": "Reject…"},
                        "style": "danger",
                        "value": action.action_id,
                    },
                ],
            }
        )
    status = "Approval needed" if pending else action.get_status_display()
    text = (
        f"{status}: {action.action_type} on {truncate(action.target, TARGET_MAX_CHARS)} "
        f"({action.env or 'no env'}, {risk} risk) proposed by {action.agent.slug}"
    )
    return {"text": text, "blocks": blocks}


def reject_modal(action: Action, *, private_metadata: str) -> dict[str, Any]:
    """The views.open view asking for the reason a rejection needs."""
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK_ID,
        "private_metadata": private_metadata,
        "title": {"type": "plain_text", "text": "Reject action"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"Reject {_what(action)} proposed by "
                    f"*{mrkdwn_escape(action.agent.slug)}*? The agent and its owners see "
                    "your reason.",
                },
            },
            {
                "type": "input",
                "block_id": REASON_BLOCK_ID,
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT_ID,
                    "multiline": True,
                    "max_length": REASON_MAX_CHARS,
                    "placeholder": {
                        "type": "plain_text",
                        "text": "What is wrong, and what should happen instead?",
                    },
                },
            },
        ],
    }
