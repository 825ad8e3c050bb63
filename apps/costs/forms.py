from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django.utils import timezone

from apps.costs.models import PRICE_FIELDS, ModelPrice

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
