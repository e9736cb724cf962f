from django.contrib import admin

from etl.models import AuditLog, Branch, FetchedFile, FetchJob, FileSource, Record, RecordExport


@admin.register(FileSource)
class FileSourceAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "listing_format", "list_url_template", "root_path")
    list_filter = ("kind",)


@admin.register(Branch)
class BranchAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "is_new_branch", "is_active", "source", "opened_on")
    list_filter = ("is_new_branch", "is_active", "source")
    search_fields = ("code", "name")


@admin.register(FetchJob)
class FetchJobAdmin(admin.ModelAdmin):
    list_display = ("id", "branch", "pos", "work_date", "status", "attempt_count", "records_written", "created_at")
    list_filter = ("status", "pos", "branch")
    date_hierarchy = "work_date"
    search_fields = ("branch__code",)
    readonly_fields = [f.name for f in FetchJob._meta.fields]
    list_select_related = ("branch",)


@admin.register(FetchedFile)
class FetchedFileAdmin(admin.ModelAdmin):
    list_display = ("filename", "filetype", "branch", "job", "chosen", "row_count", "size", "uploaded_at")
    list_filter = ("filetype", "chosen")
    readonly_fields = [f.name for f in FetchedFile._meta.fields]
    list_select_related = ("branch", "job")


@admin.register(Record)
class RecordAdmin(admin.ModelAdmin):
    list_display = ("work_date", "branch", "pos", "line_no", "tnsc", "item_code", "quantity", "amount", "payment_method")
    list_filter = ("pos",)
    search_fields = ("item_code", "tnsc")
    list_select_related = ("branch",)
    show_full_result_count = False
    raw_id_fields = ("job", "branch")


@admin.register(RecordExport)
class RecordExportAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "status", "row_count", "created_at")
    readonly_fields = [f.name for f in RecordExport._meta.fields]


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action", "actor", "branch", "job")
    list_filter = ("action",)
    readonly_fields = ("created_at", "action", "actor", "branch", "job", "detail")
    list_select_related = ("actor", "branch", "job")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
