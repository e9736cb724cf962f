from django.contrib import admin

from backtest.models import (
    BacktestResult, BacktestRun, BarImport, Instrument, Portfolio, PriceBar, Sweep, SweepResult,
)


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ["symbol", "name", "kind", "exchange", "exchange_symbol", "fractional", "active"]
    list_filter = ["kind", "exchange", "active"]
    search_fields = ["symbol", "name", "exchange_symbol"]


@admin.register(PriceBar)
class PriceBarAdmin(admin.ModelAdmin):
    list_display = ["instrument", "interval", "open_time", "open", "high", "low", "close", "volume"]
    list_filter = ["interval", "instrument"]
    date_hierarchy = "open_time"
    list_select_related = ["instrument"]


@admin.register(BacktestRun)
class BacktestRunAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "strategy", "instrument", "interval", "status", "reused", "created_at"]
    list_filter = ["status", "strategy", "interval"]
    list_select_related = ["owner", "instrument"]
    raw_id_fields = ["result"]


@admin.register(Sweep)
class SweepAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "strategy", "interval", "status", "done", "total", "created_at"]
    list_filter = ["status", "strategy"]
    list_select_related = ["owner"]


@admin.register(BacktestResult)
class BacktestResultAdmin(admin.ModelAdmin):
    list_display = ["id", "strategy", "instrument", "interval", "bar_count", "engine_version", "created_at"]
    exclude = ["equity", "trades"]
    list_select_related = ["instrument"]


@admin.register(SweepResult)
class SweepResultAdmin(admin.ModelAdmin):
    list_display = ["sweep", "seq", "instrument", "params"]
    list_select_related = ["instrument"]


@admin.register(BarImport)
class BarImportAdmin(admin.ModelAdmin):
    list_display = ["pk", "filename", "instrument", "interval", "status", "message", "created_at"]
    list_filter = ["status", "interval"]
    list_select_related = ["instrument"]


from backtest.models import WalkForward  # noqa: E402
from core.admin import RootReadOnlyAdmin  # noqa: E402


@admin.register(WalkForward)
class WalkForwardAdmin(RootReadOnlyAdmin):
    """Walk-forwards are their owner's research (private, staff included): only root sees them, read-only;
    the owner cancels one on its page or through the API."""

    list_display = ["id", "owner", "strategy", "instrument", "interval", "mode", "status", "windows_done",
                    "window_count", "created_at"]
    list_filter = ["status", "strategy", "mode"]
    list_select_related = ["owner", "instrument"]
    exclude = ["equity", "windows", "param_sets"]


@admin.register(Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "mode", "weighting", "strategy", "interval", "status", "created_at"]
    list_filter = ["status", "mode", "weighting"]
    list_select_related = ["owner"]
    exclude = ["equity", "allocation", "trades"]
