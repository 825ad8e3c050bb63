from typing import Any, cast

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat

from apps.billing.models import (
    AllocationRule,
    BillingFormat,
    RuleKind,
    RuleTarget,
    SplitBasis,
)


class BillingUploadForm(forms.Form):
    file = forms.FileField(
        help_text="CSV, gzip'd CSV or Parquet, as the provider exports it.",
        allow_empty_file=False,
    )
    format = forms.ChoiceField(choices=BillingFormat.choices, initial=BillingFormat.FOCUS)

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        limit = settings.BILLING_UPLOAD_MAX_BYTES
        if (upload.size or 0) > limit:
            raise forms.ValidationError(too_big_message(upload.size or 0))
        return upload


def too_big_message(size: int) -> str:
    limit = settings.BILLING_UPLOAD_MAX_BYTES
    return (
        f"The file is {filesizeformat(size)}; uploads are limited to {filesizeformat(limit)} "
        "(BILLING_UPLOAD_MAX_BYTES). Gzip it, or import it on the server with "
        "`manage.py import_billing FILE --format …`."
    )


class AllocationRuleForm(forms.Form):
    """The rules page's form; apps.billing.rules.rule_clean decides what is valid."""

    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=RuleKind.choices, widget=forms.RadioSelect)
    enabled = forms.BooleanField(required=False, initial=True)
    tag_key = forms.CharField(
        required=False,
        label="Tag key",
        help_text="The tag to read, e.g. opsdash-agent, team or k8s-label:app (any case).",
    )
    target = forms.ChoiceField(
        choices=[("", "—"), *RuleTarget.choices], required=False, label="Value names"
    )
    value_map = forms.CharField(
        required=False,
        label="Value map",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "e.g. CC-2040 = payments"}),
        help_text="One `tag value = slug` a line; empty: the tag value is the slug.",
    )
    match_provider = forms.CharField(required=False, label="Provider is", help_text="e.g. AWS")
    match_service = forms.CharField(
        required=False, label="Service matches", help_text="Glob, any case: *Kubernetes*"
    )
    match_tag_key = forms.CharField(required=False, label="Has tag")
    match_tag_value = forms.CharField(
        required=False, label="…with value", help_text="Empty: any value."
    )
    match_resource = forms.CharField(
        required=False,
        label="Resource matches",
        help_text="Regular expression searched in ResourceId: ^arn:aws:eks:.*:cluster/shared",
    )
    split = forms.ChoiceField(choices=[("", "—"), *SplitBasis.choices], required=False)
    teams = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every team.",
    )

    def __init__(self, *args: Any, instance: AllocationRule | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from apps.fleet.models import Team

        self.instance = instance
        cast(forms.MultipleChoiceField, self.fields["teams"]).choices = [
            (t.slug, t.name or t.slug) for t in Team.objects.order_by("slug")
        ]
        if instance is not None and not self.is_bound:
            from apps.billing.rules import rule_data

            self.initial = rule_data(instance)
            self.initial["value_map"] = "\n".join(
                f"{k} = {v}" for k, v in instance.value_map.items()
            )

    def clean_value_map(self) -> dict[str, str]:
        mapping: dict[str, str] = {}
        text = self.cleaned_data.get("value_map") or ""
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            value, sep, slug = raw.partition("=")
            if not sep or not value.strip() or not slug.strip():
                raise forms.ValidationError(
                    f"Line {number} ({raw.strip()!r}): write `tag value = slug`."
                )
            mapping[value.strip()] = slug.strip()
        return mapping

    def clean(self) -> dict[str, Any]:
        from apps.billing.rules import RuleInvalid, rule_clean

        data = super().clean() or {}
        if self.errors:
            return data
        try:
            self.rule_data = rule_clean(data, instance=self.instance)
        except RuleInvalid as exc:
            for name, messages in exc.errors.items():
                for message in messages:
                    self.add_error(name if name in self.fields else None, message)
        return data


class RecomputeForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), help_text="Inclusive.")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            raise forms.ValidationError("The end date is before the start date.")
        return data
