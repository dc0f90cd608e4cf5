from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from dashboard.models import ApiToken, Job, Node, UserRole
from dashboard.permissions import user_role


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
    list_display = ["hint", "user", "label", "role", "created_at", "expires_at", "last_used_at"]
    # New tokens come from the tokens page or `perfmon token`, which show the token once; here
    # tokens are only revoked (deleted). The role is read-only: it was checked against the user's.
    readonly_fields = ["token_hash", "hint", "role", "agent_node", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False


class UserRoleInline(admin.StackedInline):
    model = UserRole
    can_delete = False
    verbose_name_plural = "perfmon role (superusers are always admins; no role means viewer)"


class PerfmonUserAdmin(UserAdmin):
    """Django's user admin plus the perfmon role, shown in the list and changed on the user's page."""

    inlines = [*UserAdmin.inlines, UserRoleInline]
    list_display = [*UserAdmin.list_display, "role_column"]

    # Not named perfmon_role: that is the user's reverse accessor, which the admin would show instead.
    @admin.display(description="perfmon role")
    def role_column(self, user) -> str:
        return user_role(user).value


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), PerfmonUserAdmin)
