from django import forms

from apps.core.durations import parse_ttl
from apps.fleet.models import TokenScope


class AgentTokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What the token is for.")
    scopes = forms.MultipleChoiceField(
        choices=TokenScope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[TokenScope.EVENTS_WRITE],
    )
    ttl = forms.CharField(initial="30d", help_text="Lifetime: 30d, 12h, 90m, or 'never'.")

    def clean_ttl(self) -> object:
        try:
            return parse_ttl(self.cleaned_data["ttl"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
