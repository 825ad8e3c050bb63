from django import forms

from apps.core.forms import TtlField
from apps.fleet.models import AutonomyMode, Team, TokenScope


class AgentTokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What the token is for.")
    scopes = forms.MultipleChoiceField(
        choices=TokenScope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[TokenScope.EVENTS_WRITE],
    )
    ttl = TtlField(initial="30d")


class TeamForm(forms.Form):
    slug = forms.SlugField(max_length=64, help_text="Short id, e.g. payments. Cannot change later.")
    name = forms.CharField(max_length=200, required=False)
    cost_centre = forms.CharField(max_length=64, required=False)


class AgentForm(forms.Form):
    slug = forms.SlugField(
        max_length=64,
        help_text="The agent sends this as `agent` in every event. Cannot change later.",
    )
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("slug"), to_field_name="slug")
    autonomy_mode = forms.ChoiceField(choices=AutonomyMode.choices, initial=AutonomyMode.SUGGEST)
    environment = forms.CharField(max_length=32, initial="prod")


class CallbackForm(forms.Form):
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        label="Callback URL",
        help_text="https only; link-local and cloud metadata addresses are refused.",
    )

    def clean_url(self) -> str:
        from apps.actions.callbacks import callback_url_check

        return callback_url_check(self.cleaned_data["url"])
