from django.contrib import admin

from apps.notifications.models import CallbackDelivery, Notification, WebhookPost


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "recipient", "kind", "title", "read_at", "emailed_at")
    list_filter = ("kind",)
    search_fields = ("title", "dedup_key")


@admin.register(WebhookPost)
class WebhookPostAdmin(admin.ModelAdmin):
    list_display = ("created_at", "dedup_key", "attempts", "last_status", "delivered_at")


@admin.register(CallbackDelivery)
class CallbackDeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "agent", "decision_event_id", "attempts", "last_status")
    list_filter = ("agent",)
