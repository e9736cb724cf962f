from django.contrib import admin

from core.models import JobEvent, WorkerCheck, WorkerHeartbeat


class RootReadOnlyAdmin(admin.ModelAdmin):
    """Records private to their owner (they quote the user's data or research): no admin may change or
    stop them here; only root sees them, read-only."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class JobAdmin(admin.ModelAdmin):
    """Base admin for every job kind: staff see all jobs, filter and search them."""

    list_display = ["id", "owner", "status", "progress", "message", "created_at", "finished_at"]
    list_filter = ["status", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["owner__username", "message", "error"]
    readonly_fields = [
        "status", "progress", "message", "error", "created_at", "started_at", "finished_at", "heartbeat_at",
        "cancel_requested", "cancelled_by", "task_id", "event_seq",
    ]
    list_select_related = ["owner"]

    def has_module_permission(self, request):
        return request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff


@admin.register(WorkerCheck)
class WorkerCheckAdmin(JobAdmin):
    pass


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "host", "pid", "started_at", "seen_at"]


@admin.register(JobEvent)
class JobEventAdmin(admin.ModelAdmin):
    list_display = ["job_kind", "job_id", "seq", "kind", "created_at"]
    list_filter = ["job_kind", "kind"]


# --- django-q2 schedules: root's alone (accounts.staff), and only platform tasks ---------------

from django import forms  # noqa: E402
from django_q.admin import ScheduleAdmin as DjangoQScheduleAdmin  # noqa: E402
from django_q.models import Schedule  # noqa: E402

from core import schedules  # noqa: E402


class PlatformScheduleForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        probe = Schedule(
            func=cleaned.get("func") or "", hook=cleaned.get("hook") or "", kwargs=cleaned.get("kwargs") or ""
        )
        try:
            schedules.validate_schedule(probe)
        except forms.ValidationError as exc:
            for field, messages in exc.message_dict.items():
                for message in messages:
                    self.add_error(field if field in self.fields else None, message)
        return cleaned


admin.site.unregister(Schedule)


@admin.register(Schedule)
class ScheduleAdmin(DjangoQScheduleAdmin):
    form = PlatformScheduleForm
