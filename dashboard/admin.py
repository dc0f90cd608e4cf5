from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from dashboard.models import (
    Alert,
    AlertEvent,
    ApiToken,
    Deployment,
    DeploymentChange,
    Job,
    Node,
    Rule,
    Silence,
    UserRole,
)
from dashboard.permissions import user_role
from dashboard.templatetags.job_labels import stop_reason_label


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ["name", "gpu_status", "last_seen"]
    readonly_fields = ["info", "first_seen", "last_seen"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "model_name", "status", "progress_percent", "node_name", "created_at"]
    list_filter = ["kind", "status", "node_name"]
    # The raw result (up to 10,000 times per batch size) made this page 18,588 px tall: show a
    # summary, and link the full result's download instead.
    exclude = ["result"]
    readonly_fields = ["result_summary", "error", "celery_task_id", "worker_hostname"]

    def get_queryset(self, request):
        # The list never shows the result: leave the big JSON in the database (the change page
        # loads it when the summary asks).
        return super().get_queryset(request).defer("result")

    @admin.display(description="Result")
    def result_summary(self, job: Job) -> str:
        summary = job.result_summary
        if summary is None:
            return "–"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    run["batch_size"],
                    _figure(run["p50_ms"], 3),
                    _figure(run["p99_ms"], 3),
                    _figure(run["throughput_per_s"], 1),
                    run["iterations"] if run["iterations"] is not None else "–",
                    run["error"] or stop_reason_label(run["stop_reason"]),
                )
                for run in summary["runs"]
            ),
        )
        return format_html(
            "{}<table><thead><tr><th>Batch</th><th>p50 ms</th><th>p99 ms</th><th>Throughput /s</th>"
            "<th>Iterations</th><th>Stopped / error</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">Full result (JSON, raw times included)</a> · <a href="{}">job page</a></p>',
            "Partial result. " if summary["partial"] else "",
            rows,
            reverse("dashboard:job-result-json", args=[job.pk]),
            reverse("dashboard:job", args=[job.pk]),
        )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["hint", "user", "label", "role", "created_at", "expires_at", "last_used_at"]
    # New tokens come from the tokens page or `perfmon token`, which show the token once; here
    # tokens are only revoked (deleted). The role is read-only: it was checked against the user's.
    readonly_fields = ["token_hash", "hint", "role", "agent_node", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False


def _figure(value: float | None, places: int) -> str:
    return "–" if value is None else f"{value:.{places}f}"


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

from dashboard import admin_channels  # noqa: E402,F401  (registers Channel and Delivery)


class DeploymentChangeInline(admin.TabularInline):
    model = DeploymentChange
    extra = 0
    fields = ["at", "kind", "from_version", "to_version", "by", "alert", "job", "verify_until", "verdict"]
    readonly_fields = fields
    can_delete = False


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "active_version",
        "node_name",
        "probe_interval_s",
        "objective_ms",
        "last_probe_at",
    ]
    search_fields = ["name", "node_name"]
    readonly_fields = ["last_probe_at", "last_scrape_at", "scrape_state", "probe_state", "created_at"]
    inlines = [DeploymentChangeInline]


@admin.register(DeploymentChange)
class DeploymentChangeAdmin(admin.ModelAdmin):
    list_display = ["deployment", "kind", "from_version", "to_version", "by", "at", "verdict"]
    list_filter = ["kind", "verdict"]


class RuleAdminForm(forms.ModelForm):
    """The admin's rule form runs the same validation as the API and the rules page."""

    class Meta:
        model = Rule
        fields = "__all__"

    def clean(self):
        from dashboard.alerting.rules import FIELDS, RuleInvalid, clean_rule

        cleaned = super().clean()
        data = {name: cleaned[name] for name in FIELDS if name in cleaned and name != "channels"}
        data["channels"] = [channel.pk for channel in cleaned.get("channels") or []]
        try:
            valid = clean_rule(data, self.instance if self.instance.pk else None)
        except RuleInvalid as exc:
            raise forms.ValidationError(str(exc)) from None
        cleaned["target"] = valid["target"]
        return cleaned


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleAdminForm
    list_display = ["name", "op", "threshold", "for_s", "severity", "enabled", "updated_at"]
    list_filter = ["enabled", "severity"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        obj.updated_at = timezone.now()  # the evaluator reloads the rules whose updated_at moved
        super().save_model(request, obj, form, change)


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    can_delete = False
    readonly_fields = ["at", "from_state", "to_state", "value", "reason"]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Alerts are the evaluator's: read-only here (acknowledge on the alert's page or the API)."""

    list_display = ["id", "rule", "state", "is_open", "value", "pending_since", "started_at", "resolved_at"]
    list_filter = ["state", "is_open"]
    inlines = [AlertEventInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(AlertEvent)
class AlertEventAdmin(admin.ModelAdmin):
    list_display = ["id", "alert", "from_state", "to_state", "value", "at"]
    list_filter = ["to_state"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin):
    list_display = ["id", "rule", "matchers", "starts_at", "ends_at", "comment", "created_by"]
