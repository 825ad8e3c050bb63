from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django.utils import timezone

from apps.costs.billed.client import earliest_day
from apps.costs.explorer import DIMENSIONS, DRIVERS, ExplorerQuery
from apps.costs.models import PRICE_FIELDS, DriverKind, ModelPrice

MODEL_PATTERN = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._:/@\[\]-]*\*?$",
    "A model name (letters, digits, . _ : / @ [ ] -), optionally ending in * to match every "
    "name starting with it.",
)
PROVIDER = RegexValidator(
    r"^[a-z0-9][a-z0-9._-]*$",
    "A provider name in lower case, as llm_calls send it (anthropic, openai, aws-bedrock).",
)
PRICE_LABELS = {
    "input_usd_per_mtok": "Input",
    "output_usd_per_mtok": "Output",
    "cache_write_5m_usd_per_mtok": "5-minute cache write",
    "cache_write_1h_usd_per_mtok": "1-hour cache write",
    "cache_read_usd_per_mtok": "Cache read",
}


def _price_field(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=f"{label} (USD / million tokens)",
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=6,
        error_messages={
            "invalid": "Enter a price in USD such as 3 or 0.30 (a dot for decimals, no $).",
            "min_value": "A price cannot be negative.",
            "max_digits": "At most 6 digits before and 6 after the decimal point.",
            "max_decimal_places": "At most 6 digits after the decimal point.",
            "max_whole_digits": "At most 6 digits before the decimal point.",
        },
    )


class ModelPriceForm(forms.Form):
    """A new price row (or a correction of one); the service checks the history rules."""

    provider = forms.CharField(max_length=64, initial="anthropic", validators=[PROVIDER])
    model = forms.CharField(
        max_length=200,
        validators=[MODEL_PATTERN],
        help_text="e.g. claude-sonnet-4-5* for every dated version of Claude Sonnet 4.5.",
    )
    effective_from = forms.DateTimeField(
        label="Effective from (UTC)",
        help_text="YYYY-MM-DD HH:MM, UTC. Calls from this moment on take this price.",
        error_messages={"invalid": "Enter a date and time as YYYY-MM-DD HH:MM (UTC)."},
    )
    input_usd_per_mtok = _price_field(PRICE_LABELS["input_usd_per_mtok"])
    output_usd_per_mtok = _price_field(PRICE_LABELS["output_usd_per_mtok"])
    cache_write_5m_usd_per_mtok = _price_field(PRICE_LABELS["cache_write_5m_usd_per_mtok"])
    cache_write_1h_usd_per_mtok = _price_field(PRICE_LABELS["cache_write_1h_usd_per_mtok"])
    cache_read_usd_per_mtok = _price_field(PRICE_LABELS["cache_read_usd_per_mtok"])
    batch_discount = forms.DecimalField(
        label="Batch discount (share off)",
        initial=Decimal("0.5"),
        min_value=Decimal(0),
        max_value=Decimal(1),
        max_digits=5,
        decimal_places=4,
        help_text="0.5 = Message Batches calls cost half.",
        error_messages={
            "invalid": "Enter a share between 0 and 1, such as 0.5.",
            "min_value": "The discount is a share between 0 and 1.",
            "max_value": "The discount is a share between 0 and 1.",
        },
    )
    corrects = forms.ModelChoiceField(
        queryset=ModelPrice.objects.current(),
        required=False,
        label="Corrects",
        help_text="Only to fix a wrong price: the row it replaces (same model and date).",
    )
    source_url = forms.URLField(
        required=False, max_length=500, label="Source URL", assume_scheme="https"
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_effective_from(self) -> datetime:
        value: datetime = self.cleaned_data["effective_from"]
        # The label says UTC: a naive entry is UTC whatever the server's zone.
        if timezone.is_naive(value):
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def service_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "provider": data["provider"],
            "model": data["model"],
            "effective_from": data["effective_from"],
            "prices": {name: data[name] for name in PRICE_FIELDS},
            "batch_discount": data["batch_discount"],
            "corrects": data["corrects"],
            "source_url": data["source_url"],
            "note": data["note"],
        }


MAX_EXPLORER_DAYS = 366


class ExplorerForm(forms.Form):
    """The cost explorer's query string; every field is optional and has a default."""

    start = forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Enter the first day as YYYY-MM-DD."},
    )
    end = forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Enter the last day as YYYY-MM-DD."},
    )
    dimension = forms.ChoiceField(
        required=False, choices=[(d, d.capitalize()) for d in DIMENSIONS], label="Group by"
    )
    currency = forms.RegexField(
        required=False,
        regex=r"^[A-Z]{3}$",
        error_messages={"invalid": "A currency is three capital letters (USD, EUR)."},
    )
    cloud_cost = forms.ChoiceField(
        required=False,
        choices=[("effective", "Effective cost"), ("billed", "Billed cost")],
        label="Cloud cost",
    )
    team = forms.CharField(required=False, max_length=64)
    agent = forms.CharField(required=False, max_length=64)
    provider = forms.CharField(required=False, max_length=128)
    driver = forms.ChoiceField(
        required=False, choices=[("", "All drivers"), *[(d, d) for d in DRIVERS]]
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        today = timezone.now().date()
        end = data.get("end") or today
        start = data.get("start") or end - timedelta(days=29)
        if start > end:
            raise forms.ValidationError("The first day is after the last day.")
        if (end - start).days + 1 > MAX_EXPLORER_DAYS:
            raise forms.ValidationError(
                f"Choose at most {MAX_EXPLORER_DAYS} days; export a year at a time."
            )
        data["start"], data["end"] = start, end
        return data

    def query(self) -> ExplorerQuery:
        data = self.cleaned_data

        def one(name: str) -> tuple[str, ...]:
            return (data[name],) if data.get(name) else ()

        return ExplorerQuery(
            start=data["start"],
            end=data["end"],
            dimension=data.get("dimension") or "driver",
            currency=data.get("currency") or "USD",
            cloud_cost=data.get("cloud_cost") or "effective",
            teams=one("team"),
            agents=one("agent"),
            providers=one("provider"),
            drivers=one("driver"),
        )


TOOL_PATTERN = RegexValidator(
    r"^[A-Za-z0-9_.:/*-]+$",
    "A tool name as tool_call events send it (letters, digits, _ . : / -), or a glob with * "
    "such as pagerduty.* or * for every tool.",
)


class DriverRateForm(forms.Form):
    # The price form on the same page has effective_from and note fields too.
    prefix = "rate"

    kind = forms.ChoiceField(choices=DriverKind.choices, label="Driver")
    tool = forms.CharField(
        required=False,
        max_length=200,
        validators=[TOOL_PATTERN],
        help_text="For tool calls only: the tool name, or a glob (* for every tool).",
    )
    usd_rate = forms.DecimalField(
        label="Rate (USD)",
        min_value=Decimal(0),
        max_digits=16,
        decimal_places=9,
        help_text="Per GB-month of stored audit log, or per tool call.",
        error_messages={
            "invalid": "Enter an amount in USD such as 0.03 (a dot for decimals, no $).",
            "min_value": "A rate cannot be negative.",
            "max_decimal_places": "At most 9 digits after the decimal point.",
            "max_digits": "At most 7 digits before and 9 after the decimal point.",
            "max_whole_digits": "At most 7 digits before the decimal point.",
        },
    )
    effective_from = forms.DateField(
        label="From (UTC day)",
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Enter the first day as YYYY-MM-DD."},
    )
    note = forms.CharField(required=False, max_length=500)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, tool = data.get("kind"), (data.get("tool") or "").strip()
        if kind == DriverKind.TOOL_CALL and not tool:
            self.add_error("tool", "Name the tool (or * for every tool) this rate is for.")
        if kind == DriverKind.LOG_STORAGE and tool:
            self.add_error(
                "tool", "Audit-log storage has one rate for every agent: leave Tool empty."
            )
        data["tool"] = tool
        return data


MAX_RECON_DAYS = 366


class ReconFilterForm(forms.Form):
    """The reconciliation page's range (UTC days, both included) and filters."""

    since = forms.DateField(label="From (UTC)", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To (UTC)", widget=forms.DateInput(attrs={"type": "date"}))
    workspace = forms.CharField(max_length=128, required=False)
    model = forms.CharField(max_length=200, required=False)
    agent = forms.CharField(max_length=64, required=False)
    tokens_only = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until:
            if until < since:
                raise forms.ValidationError(f"“To” ({until}) is before “From” ({since}).")
            if (until - since).days >= MAX_RECON_DAYS:
                raise forms.ValidationError(
                    f"Choose at most {MAX_RECON_DAYS} days; {since} to {until} is "
                    f"{(until - since).days + 1}."
                )
        return data


class PullForm(forms.Form):
    """The days "Pull now" replaces (UTC, both included)."""

    since = forms.DateField()
    until = forms.DateField()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until:
            if until < since:
                raise forms.ValidationError(
                    f"The last day ({until}) is before the first ({since})."
                )
            today = timezone.now().date()
            if until > today:
                raise forms.ValidationError(f"{until} is in the future; nothing is billed yet.")
            first = earliest_day(today)
            if since < first:
                raise forms.ValidationError(
                    f"Anthropic reports cost from {first} on (from 2026-01-01, and for the "
                    f"last 365 days); choose a first day from {first}."
                )
            if (until - since).days >= MAX_RECON_DAYS:
                raise forms.ValidationError(f"Pull at most {MAX_RECON_DAYS} days at once.")
        return data


class ApiKeyMapForm(forms.Form):
    agent = forms.SlugField(max_length=64)
    api_key_id = forms.CharField(max_length=128, required=False)


MAX_ENERGY_DAYS = 366


class EnergyFilterForm(forms.Form):
    """The Energy page's query string: dimension and an inclusive range of UTC days."""

    by = forms.ChoiceField(label="Group by", required=False)
    start = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from apps.costs.energy_selectors import DIMENSIONS

        super().__init__(*args, **kwargs)
        by = self.fields["by"]
        assert isinstance(by, forms.ChoiceField)
        by.choices = list(DIMENSIONS.items())
        self.fields["start"].error_messages["invalid"] = "Enter the first day as YYYY-MM-DD."
        self.fields["end"].error_messages["invalid"] = "Enter the last day as YYYY-MM-DD."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        today = timezone.now().astimezone(UTC).date()
        data["by"] = data.get("by") or "team"
        end = data.get("end") or today
        start = data.get("start") or end - timedelta(days=29)
        if "start" in self.errors or "end" in self.errors:
            return data
        if start > end:
            raise forms.ValidationError("The first day is after the last day: swap them.")
        if (end - start).days + 1 > MAX_ENERGY_DAYS:
            raise forms.ValidationError(
                f"The range is {(end - start).days + 1} days; choose at most {MAX_ENERGY_DAYS}."
            )
        data["start"], data["end"] = start, end
        return data
