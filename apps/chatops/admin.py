from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.chatops.models import SlackMessage, SlackUserLink


@admin.register(SlackUserLink)
class SlackUserLinkAdmin(admin.ModelAdmin):
    """Who a Slack user is in opsdash; links made from a matching email show linked_by=email."""

    list_display = ["slack_user_id", "user", "linked_by", "created_at"]
    list_filter = ["linked_by"]
    search_fields = ["slack_user_id", "user__username", "user__email"]
    raw_id_fields = ["user"]
    readonly_fields = ["linked_by", "created_at"]


@admin.register(SlackMessage)
class SlackMessageAdmin(admin.ModelAdmin):
    """Read-only: which approval requests went to Slack, for support."""

    list_display = ["action", "channel", "ts", "posted_at", "updated_at"]
    list_select_related = ["action"]
    search_fields = ["action__action_id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
