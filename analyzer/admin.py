from django.contrib import admin
from django.db.models import Sum

from analyzer.models import AnalysisSession, Answer, AnswerUsage, Message, Processing
from core.admin import RootReadOnlyAdmin


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
class AnswerAdmin(RootReadOnlyAdmin):
    list_display = ("id", "session", "owner", "mode", "status", "provider", "analyst", "model", "prompt_tokens",
                    "completion_tokens", "created_at", "finished_at")
    list_filter = ("status", "mode", "provider", "analyst", "model")
    raw_id_fields = ("session", "owner", "cancelled_by")
    readonly_fields = ("analyst", "model", "prompt_tokens", "completion_tokens", "usage_estimated")


@admin.register(Message)
class MessageAdmin(RootReadOnlyAdmin):
    list_display = ("id", "session", "seq", "kind", "answer", "created_at")
    list_filter = ("kind",)
    raw_id_fields = ("session", "answer")
    exclude = ("rows_kept",)


@admin.register(Processing)
class ProcessingAdmin(RootReadOnlyAdmin):
    list_display = ("id", "session", "owner", "status", "stage", "progress", "created_at", "finished_at")
    list_filter = ("status", "stage")
    raw_id_fields = ("session", "owner", "cancelled_by")
    readonly_fields = ("event_seq", "task_id", "heartbeat_at")


@admin.register(AnswerUsage)
class AnswerUsageAdmin(admin.ModelAdmin):
    """Staff follow what the LLM analysts cost: per answer its owner, analyst, model and tokens, and the totals
    of the filtered list; never the question, the session's title or anything of the data."""

    list_display = ("id", "owner", "session_id", "mode", "status", "analyst", "model", "prompt_tokens",
                    "completion_tokens", "usage_estimated", "created_at")
    list_filter = ("analyst", "model", "status", ("created_at", admin.DateFieldListFilter))
    search_fields = ("owner__username",)
    list_select_related = ("owner",)
    fields = ("owner", "session_id", "mode", "status", "provider", "analyst", "model", "prompt_tokens",
              "completion_tokens", "usage_estimated", "created_at", "finished_at")
    readonly_fields = fields

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context=extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            totals = changelist.queryset.aggregate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
            response.context_data["title"] = (f"LLM token usage: {totals['prompt'] or 0:,} prompt + "
                                              f"{totals['completion'] or 0:,} completion tokens")
        return response
