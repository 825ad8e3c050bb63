"""Reads for the billing pages."""

from django.db.models import QuerySet

from apps.billing.models import BillingImport

IMPORTS_SHOWN = 100


def billing_imports_recent(*, limit: int = IMPORTS_SHOWN) -> QuerySet[BillingImport]:
    # The error report can be 1,000 entries: the list never loads it.
    return (
        BillingImport.objects.select_related("uploaded_by")
        .defer("row_errors", "periods")
        .order_by("-created_at", "-id")[:limit]
    )
