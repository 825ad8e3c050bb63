from django.contrib import admin

from apps.audit.models import Event, LedgerSeal
from apps.core.admin import ReadOnlyAdmin  # the audit log is append-only


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["ts", "agent", "type", "action_id", "incident_id", "source"]
    list_filter = ["type", "source"]
    search_fields = ["=id", "=action_id", "=incident_id"]
    list_select_related = ["agent"]
    show_full_result_count = False  # no COUNT(*) over millions of rows


@admin.register(LedgerSeal)
class LedgerSealAdmin(ReadOnlyAdmin):
    list_display = ["seq", "sealed_at", "event_count", "merkle_root", "source"]
    show_full_result_count = False
