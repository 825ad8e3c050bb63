from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.audit.models import Event, LedgerSeal


class ReadOnlyAdmin(admin.ModelAdmin):
    """The audit log is append-only: the admin may look, never touch."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
