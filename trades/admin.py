from django.contrib import admin

from trades.models import Exchange, Export, LoadedFile


@admin.register(Exchange)
class ExchangeAdmin(admin.ModelAdmin):
    list_display = ["id", "acronym", "name", "mic"]
    search_fields = ["name", "acronym", "mic"]


@admin.register(LoadedFile)
class LoadedFileAdmin(admin.ModelAdmin):
    list_display = ["name", "rows_loaded", "rows_bad", "loaded_at"]
    readonly_fields = ["sha256", "name", "rows_loaded", "rows_bad", "loaded_at"]


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "status", "format", "rows_written", "size_bytes", "created_at", "expired_at"]
    list_filter = ["status", "format"]
    list_select_related = ["owner"]
    readonly_fields = [f.name for f in Export._meta.fields]

    def has_add_permission(self, request):
        return False
