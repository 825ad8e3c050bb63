from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat

from apps.billing.models import BillingFormat


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
