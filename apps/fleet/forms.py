from django import forms

from apps.core.forms import TtlField
from apps.fleet.models import TokenScope


class AgentTokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What the token is for.")
    scopes = forms.MultipleChoiceField(
        choices=TokenScope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[TokenScope.EVENTS_WRITE],
    )
    ttl = TtlField(initial="30d")
