from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from apps.accounts.roles import FINOPS, has_role
from apps.core.admin import ReadOnlyAdmin
from apps.costs.models import (
    PRICE_FIELDS,
    AnthropicBilledCost,
    AnthropicCostPull,
    LlmUsage,
    ModelPrice,
)

# The admin's add form, and the fields its ModelForm validates.
PRICE_ADMIN_FIELDS = (
    "provider",
    "model",
    "effective_from",
    *PRICE_FIELDS,
    "batch_discount",
    "corrects",
    "source_url",
    "note",
)


class ModelPriceAdminForm(forms.ModelForm):
    source_url = forms.URLField(required=False, max_length=500, assume_scheme="https")

    class Meta:
        model = ModelPrice
        fields = PRICE_ADMIN_FIELDS

    def clean(self) -> dict[str, Any]:
        from apps.costs.services import model_price_history_check

        data = super().clean() or {}
        if not self.errors:
            # The page's rules, checked here so a refusal is a form error, not a 500.
            model_price_history_check(
                provider=data["provider"],
                model=data["model"],
                effective_from=data["effective_from"],
                corrects=data.get("corrects"),
                note=data.get("note", ""),
            )
        return data


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """Add-only, as on the price page: history is never edited in place (a correction is a
    new row naming the one it corrects)."""

    list_display = ["provider", "model", "effective_from", *PRICE_FIELDS, "batch_discount"]
    list_filter = ["provider"]
    search_fields = ["model"]
    fields = PRICE_ADMIN_FIELDS
    raw_id_fields = ["corrects"]
    form = ModelPriceAdminForm

    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, FINOPS) and request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ModelPrice, form: Any, change: bool) -> None:
        from apps.costs.services import model_price_create

        # Through the service, so the admin obeys the same history rules as the page.
        saved = model_price_create(
            by=request.user,
            provider=obj.provider,
            model=obj.model,
            effective_from=obj.effective_from,
            prices={name: getattr(obj, name) for name in PRICE_FIELDS},
            batch_discount=obj.batch_discount,
            corrects=obj.corrects,
            source_url=obj.source_url,
            note=obj.note,
        )
        obj.pk = saved.pk


@admin.register(LlmUsage)
class LlmUsageAdmin(ReadOnlyAdmin):
    """Written by the ingest of llm_call events and the repricing."""

    list_display = ["ts", "agent", "model", "cost_usd", "cost_source", "energy_wh", "action_id"]
    list_filter = ["cost_source", "provider"]
    search_fields = ["=action_id", "=model"]
    list_select_related = ["agent"]
    show_full_result_count = False


@admin.register(AnthropicCostPull)
class AnthropicCostPullAdmin(ReadOnlyAdmin):
    """Written only by the Admin API pull."""

    list_display = ["created_at", "trigger", "since", "until", "status", "rows", "billed_usd"]
    list_filter = ["status", "trigger"]


@admin.register(AnthropicBilledCost)
class AnthropicBilledCostAdmin(ReadOnlyAdmin):
    """Written only by the Admin API pull: a pull replaces whole days, never single rows."""

    list_display = ["day", "workspace_id", "model", "api_key_id", "cost_type", "amount"]
    list_filter = ["cost_type", "currency"]
    search_fields = ["=api_key_id", "=workspace_id", "=model"]
    date_hierarchy = "day"
