"""The SLO create/edit form: shape only; apps.slo.services checks the rules and its messages are
put back at their fields by the view."""

from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model

from apps.fleet.models import Agent, Team
from apps.slo.models import ROLLING_DAYS, SliKind, Slo, SloScope, WindowKind
from apps.slo.rules import EDITABLE_FIELDS
from apps.slo.services import (
    AGENT_VERSION_MAX,
    DESCRIPTION_MAX,
    NAME_MAX,
    QUERY_MAX_BYTES,
    WEBHOOK_URL_MAX,
    duration_format,
    slo_values,
)

# The form's fields: what the services let a person set, in the same order.
FORM_FIELDS = EDITABLE_FIELDS


def _too_long(label: str, limit: int) -> dict[str, str]:
    return {"max_length": f"The {label} is too long: at most {limit:,} characters."}


class SloForm(forms.Form):
    slug = forms.CharField(
        max_length=63,
        help_text="Lowercase letters, digits and hyphens; used in URLs and OpenSLO files. Fixed "
        "once saved.",
        error_messages={"required": "A slug is required.", **_too_long("slug", 63)},
    )
    name = forms.CharField(
        max_length=NAME_MAX,
        error_messages={"required": "A name is required.", **_too_long("name", NAME_MAX)},
    )
    description = forms.CharField(
        required=False,
        max_length=DESCRIPTION_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages=_too_long("description", DESCRIPTION_MAX),
    )
    sli = forms.ChoiceField(label="SLI", choices=SliKind.choices)
    scope = forms.ChoiceField(choices=SloScope.choices)
    team = forms.ChoiceField(required=False)
    agent = forms.ChoiceField(required=False)
    agent_version = forms.CharField(
        required=False,
        max_length=AGENT_VERSION_MAX,
        help_text="Optional: count only this agent version (a canary).",
        error_messages=_too_long("agent version", AGENT_VERSION_MAX),
    )
    objective = forms.DecimalField(
        help_text="Ratio of good events, 0.5 to 0.99999 (0.99 is 99 %).",
        error_messages={
            "required": "An objective is required (e.g. 0.99).",
            "invalid": "Give the objective as a number (e.g. 0.99).",
        },
    )
    window_kind = forms.ChoiceField(label="Window", choices=WindowKind.choices)
    window_days = forms.TypedChoiceField(
        label="Rolling window",
        choices=[(d, f"{d} days") for d in ROLLING_DAYS],
        coerce=int,
    )
    time_zone = forms.CharField(
        required=False,
        max_length=64,
        help_text="IANA name, e.g. Europe/Paris; the month starts at midnight there.",
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off"}),
    )
    threshold = forms.DecimalField(
        required=False,
        error_messages={"invalid": "Give the threshold as a number."},
    )
    rollback_window = forms.CharField(
        required=False,
        max_length=20,
        help_text="A succeeded execution rolled back within this counts as bad (e.g. 24h).",
    )
    good_query = forms.CharField(
        label="Good events (PromQL)",
        required=False,
        max_length=QUERY_MAX_BYTES,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        error_messages=_too_long("query", QUERY_MAX_BYTES),
    )
    total_query = forms.CharField(
        label="Total events (PromQL)",
        required=False,
        max_length=QUERY_MAX_BYTES,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        error_messages=_too_long("query", QUERY_MAX_BYTES),
    )
    alerting = forms.BooleanField(required=False, label="Alert on fast burn")
    notify_in_app = forms.BooleanField(required=False, label="In the app")
    notify_email = forms.BooleanField(required=False, label="By email")
    notify_webhook = forms.BooleanField(required=False, label="By webhook")
    webhook_url = forms.CharField(
        label="Webhook URL",
        required=False,
        max_length=WEBHOOK_URL_MAX,
        help_text="Blank: the NOTIFY_WEBHOOK_URL setting.",
        error_messages=_too_long("URL", WEBHOOK_URL_MAX),
    )
    auto_demote = forms.BooleanField(
        required=False,
        label="Demote the agent one autonomy step on a page alert",
        help_text="Rollback and accuracy SLOs only.",
    )
    owners = forms.MultipleChoiceField(
        required=False, widget=forms.SelectMultiple(attrs={"size": 4})
    )

    def __init__(self, *args: Any, editing: Slo | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        cast(forms.ChoiceField, self.fields["team"]).choices = [("", "—")] + [
            (t.slug, t.name or t.slug) for t in Team.objects.order_by("slug")
        ]
        cast(forms.ChoiceField, self.fields["agent"]).choices = [("", "—")] + [
            (a.slug, f"{a.slug} ({a.team.slug})")
            for a in Agent.objects.select_related("team").order_by("slug")
        ]
        cast(forms.ChoiceField, self.fields["owners"]).choices = [
            (u, u)
            for u in get_user_model()
            .objects.filter(is_active=True)
            .order_by("username")
            .values_list("username", flat=True)
        ]
        if editing is not None:
            # The slug names the SLO everywhere; it is shown, not edited.
            self.fields["slug"].required = False
            self.fields["slug"].disabled = True

    @staticmethod
    def initial_for(slo: Slo | None) -> dict[str, Any]:
        if slo is None:
            return {
                "scope": SloScope.ALL,
                "window_kind": WindowKind.ROLLING,
                "window_days": 28,
                "time_zone": "UTC",
                "objective": "0.99",
                "rollback_window": "24h",
                "alerting": True,
                "notify_in_app": True,
            }
        values = slo_values(slo)
        values["team"] = slo.team.slug if slo.team else ""
        values["agent"] = slo.agent.slug if slo.agent else ""
        values["objective"] = format(slo.objective.normalize(), "f")
        values["threshold"] = (
            format(slo.threshold.normalize(), "f") if slo.threshold is not None else ""
        )
        values["rollback_window"] = duration_format(slo.rollback_window)
        return values

    def service_fields(self) -> dict[str, Any]:
        """The cleaned data as slo_create/slo_update take it (fields that do not apply to the
        chosen SLI or scope are sent blank: the form shows them only when they apply)."""
        data = dict(self.cleaned_data)
        sli, scope = data.get("sli"), data.get("scope")
        fields: dict[str, Any] = {name: data.get(name) for name in FORM_FIELDS}
        if self.editing is not None:
            fields.pop("slug")
        fields["team"] = data.get("team") or None if scope == SloScope.TEAM else None
        fields["agent"] = data.get("agent") or None if scope == SloScope.AGENT else None
        if scope == SloScope.ALL:
            fields["agent_version"] = ""
        if sli not in ("time_to_propose", "cost_per_action", "energy_per_action"):
            fields["threshold"] = None
        if sli == SliKind.ROLLBACK:
            fields["rollback_window"] = data.get("rollback_window") or ""
        else:
            fields.pop("rollback_window")
        if sli != SliKind.PROMQL:
            fields["good_query"] = fields["total_query"] = ""
        if data.get("window_kind") != WindowKind.CALENDAR_MONTH:
            fields.pop("time_zone")
        if sli not in ("rollback", "accuracy") or scope == SloScope.ALL:
            fields["auto_demote"] = False
        fields["owners"] = list(data.get("owners") or [])
        return fields
