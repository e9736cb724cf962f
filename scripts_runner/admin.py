from django.contrib import admin, messages

from scripts_runner import services
from scripts_runner.models import Script, ScriptRun


@admin.register(Script)
class ScriptAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "owner", "size", "updated_at"]
    list_filter = ["updated_at"]
    search_fields = ["name", "owner__username", "sha256"]
    readonly_fields = ["owner", "name", "file", "sha256", "size", "created_at", "updated_at"]

    def has_add_permission(self, request):
        return False  # scripts are uploaded through the pages or the API (validated there)

    def delete_model(self, request, obj):
        services.script_delete(script=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for script in queryset:
            services.script_delete(script=script, by=request.user)


@admin.register(ScriptRun)
class ScriptRunAdmin(admin.ModelAdmin):
    list_display = ["id", "script", "owner", "status", "end_reason", "exit_code", "created_at", "finished_at"]
    list_filter = ["status", "end_reason", "network", "sandboxed"]
    search_fields = ["script__name", "owner__username"]
    list_select_related = ["script", "owner"]
    actions = ["cancel_runs"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Stop the selected runs")
    def cancel_runs(self, request, queryset):
        count = 0
        for run in queryset:
            if not run.is_finished:
                services.script_run_cancel(run=run, by=request.user)
                count += 1
        self.message_user(request, f"Asked {count} run(s) to stop.", messages.INFO)
