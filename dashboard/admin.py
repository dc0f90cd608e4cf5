from django.contrib import admin

from dashboard.models import ApiToken, Job, Node


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ["name", "gpu_status", "last_seen"]
    readonly_fields = ["info", "first_seen", "last_seen"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "model_name", "status", "progress_percent", "node_name", "created_at"]
    list_filter = ["kind", "status", "node_name"]
    readonly_fields = ["result", "error", "celery_task_id", "worker_hostname"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["hint", "user", "created_at", "last_used_at"]
    # New tokens come from `perfmon token <user>`, which shows the token once; the admin only revokes.
    readonly_fields = ["token_hash", "hint", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False
