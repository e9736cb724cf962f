from django.contrib import admin

from analyzer.models import AnalysisSession, Answer, Message, Processing


@admin.register(AnalysisSession)
class AnalysisSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "owner", "filename", "row_count", "column_count", "created_at")
    list_filter = ("file_format",)
    search_fields = ("title", "filename", "owner__username")
    readonly_fields = ("event_seq", "storage_dir", "data_name", "original_name", "detection", "processing_seconds")
    exclude = ("preview", "profile", "columns")


@admin.register(Answer)
class AnswerAdmin(admin.ModelAdmin):
    list_display = ("id", "session", "owner", "mode", "status", "provider", "created_at", "finished_at")
    list_filter = ("status", "mode", "provider")
    raw_id_fields = ("session", "owner", "cancelled_by")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "session", "seq", "kind", "answer", "created_at")
    list_filter = ("kind",)
    raw_id_fields = ("session", "answer")
    exclude = ("rows_kept",)


@admin.register(Processing)
class ProcessingAdmin(admin.ModelAdmin):
    list_display = ("id", "session", "owner", "status", "stage", "progress", "created_at", "finished_at")
    list_filter = ("status", "stage")
    raw_id_fields = ("session", "owner", "cancelled_by")
    readonly_fields = ("event_seq", "task_id", "heartbeat_at")
