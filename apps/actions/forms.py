from typing import Any

from django import forms

from apps.actions.verdict import NOTE_MAX_LENGTH

TEXT_MAX_LENGTH = 2000


def _text(name: str, limit: int) -> forms.CharField:
    return forms.CharField(
        required=False,
        max_length=limit,
        strip=True,
        error_messages={"max_length": f"The {name} is too long: at most {limit:,} characters."},
    )


class DecisionForm(forms.Form):
    """Approve (optionally with a comment) or reject (with a reason) a pending action."""

    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject")],
        error_messages={
            "required": "Choose approve or reject.",
            "invalid_choice": "Choose approve or reject.",
        },
    )
    reason = _text("reason", TEXT_MAX_LENGTH)
    comment = _text("comment", TEXT_MAX_LENGTH)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("decision") == "reject" and not data.get("reason"):
            self.add_error("reason", "A rejection needs a reason the agent's owners can act on.")
        return data


class VerdictForm(forms.Form):
    """A person's judgement of a proposal once its result is known."""

    correct = forms.TypedChoiceField(
        choices=[("1", "Correct"), ("0", "Incorrect")],
        coerce=lambda v: v == "1",
        error_messages={
            "required": "Choose correct or incorrect.",
            "invalid_choice": "Choose correct or incorrect.",
        },
    )
    note = _text("note", NOTE_MAX_LENGTH)


def form_errors_text(form: forms.Form) -> str:
    """All of a form's errors as one line for the outcome banner (each is a full sentence)."""
    return " ".join(str(e) for errors in form.errors.values() for e in errors)
