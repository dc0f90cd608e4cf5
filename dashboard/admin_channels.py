"""Admin for notification channels and their delivery attempts (read-only: attempts are history)."""

from __future__ import annotations

from django.contrib import admin

from dashboard.models import Channel, Delivery


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "enabled", "created_at")
    list_filter = ("kind", "enabled")
    search_fields = ("name",)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "channel",
        "alert",
        "alert_state",
        "attempt",
        "status",
        "response_code",
        "duration_ms",
    )
    list_filter = ("status", "alert_state", "channel")
    search_fields = ("idempotency_key", "error")
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
