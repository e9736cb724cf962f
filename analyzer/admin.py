from django.contrib import admin

from analyzer.models import AnalysisSession, Answer, Message, Processing


class OwnerOnlyRecordAdmin(admin.ModelAdmin):
    """Answers, messages and processing jobs are their owner's (they quote the user's data): no admin may
    change or stop them here; only root sees them, read-only."""

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


@admin.register(AnalysisSession)
class AnalysisSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "owner", "filename", "row_count", "column_count", "created_at")
    list_filter = ("file_format",)
    search_fields = ("title", "filename", "owner__username")
    readonly_fields = ("event_seq", "storage_dir", "data_name", "original_name", "detection", "processing_seconds")
    exclude = ("preview", "profile", "columns")

    # Read-only: deleting a session here would stop its owner's answer and leave its files behind;
    # the owner deletes it on the session page or through the API (analyzer.services.session_delete).
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Answer)
class AnswerAdmin(OwnerOnlyRecordAdmin):
    list_display = ("id", "session", "owner", "mode", "status", "provider", "created_at", "finished_at")
    list_filter = ("status", "mode", "provider")
    raw_id_fields = ("session", "owner", "cancelled_by")


@admin.register(Message)
class MessageAdmin(OwnerOnlyRecordAdmin):
    list_display = ("id", "session", "seq", "kind", "answer", "created_at")
    list_filter = ("kind",)
    raw_id_fields = ("session", "answer")
    exclude = ("rows_kept",)


@admin.register(Processing)
class ProcessingAdmin(OwnerOnlyRecordAdmin):
    list_display = ("id", "session", "owner", "status", "stage", "progress", "created_at", "finished_at")
    list_filter = ("status", "stage")
    raw_id_fields = ("session", "owner", "cancelled_by")
    readonly_fields = ("event_seq", "task_id", "heartbeat_at")
