from datetime import timedelta

from django import forms

from apps.core.durations import parse_ttl


class TtlField(forms.CharField):
    """A token lifetime such as 30d, 12h or 'never' (None)."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("help_text", "Lifetime: 30d, 12h, 90m, or 'never'.")
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def clean(self, value: object) -> timedelta | None:
        text = super().clean(value)
        try:
            return parse_ttl(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
