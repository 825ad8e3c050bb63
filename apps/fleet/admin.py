from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.fleet.models import Agent, AgentToken, Team


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "cost_centre", "owner_email"]
    search_fields = ["slug", "name", "cost_centre"]


class AgentTokenInline(admin.TabularInline):
    """Tokens are minted on the agent's page in opsdash, where the secret is shown once."""

    model = AgentToken
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "prefix",
        "name",
        "scopes",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = [
        "slug",
        "team",
        "environment",
        "autonomy_mode",
        "halted",
        "anthropic_api_key_id",
    ]
    list_filter = ["team", "autonomy_mode", "halted", "environment"]
    search_fields = ["slug", "name", "anthropic_api_key_id"]
    inlines = [AgentTokenInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The slug is part of every sealed event's hash: it never changes once created.
        return ["slug"] if obj is not None else []
