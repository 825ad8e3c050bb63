"""A person judges a proposal correct or incorrect once its result is known (accuracy SLI)."""

from typing import Any

from django.db import transaction

from apps.actions.models import Action
from apps.actions.selectors import verdict_allowed
from apps.audit.services.opsdash_events import opsdash_event_record

NOTE_MAX_LENGTH = 2000


class VerdictRefused(Exception):
    """The verdict cannot be recorded; the message says why."""


def action_verdict_record(*, action_id: str, user: Any, correct: bool, note: str = "") -> Action:
    """Writes a `verdict` event, folded into Action.verdict_*.

    Only after an outcome or a finished execution: before that there is nothing to judge the
    proposal by. A later verdict replaces an earlier one in the read model (latest by time),
    so the accuracy SLI counts each action once.
    """
    note = note.strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise VerdictRefused(f"The note is too long: at most {NOTE_MAX_LENGTH} characters.")
    with transaction.atomic():
        # The row lock orders this verdict after a concurrent outcome or execution event.
        action = Action.objects.select_for_update().filter(action_id=action_id).first()
        if action is None:
            raise VerdictRefused(f"No action {action_id!r}.")
        if not verdict_allowed(action):
            raise VerdictRefused(
                "Not yet: a proposal can be judged once the action has an outcome or a "
                f"finished execution (it is {action.get_status_display().lower()})."
            )
        opsdash_event_record(
            agent=action.agent,
            event_type="verdict",
            action_id=action.action_id,
            incident_id=action.incident_id,
            data={"correct": correct, "by": user.get_username(), "note": note},
        )
        action.refresh_from_db()
        return action
