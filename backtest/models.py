"""Market data (instruments, price bars) and backtests (stored results, runs, sweeps)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.models import Job


class InstrumentKind(models.TextChoices):
    CRYPTO = "crypto", "Crypto"
    STOCK = "stock", "Stock"


class Interval(models.TextChoices):
    H1 = "1h", "1 hour"
    H4 = "4h", "4 hours"
    D1 = "1d", "1 day"
    W1 = "1w", "1 week"
    MO1 = "1M", "1 month"  # Binance's name; bars open on the first day of each month (UTC)


#: Nominal bar spacing; a month varies (28-31 days), see `CALENDAR_INTERVALS`.
INTERVAL_SECONDS = {"1h": 3600, "4h": 4 * 3600, "1d": 86400, "1w": 7 * 86400, "1M": 30 * 86400}
#: Intervals whose bars follow the calendar (weeks from Monday, months from the 1st) for every market.
CALENDAR_INTERVALS = {"1w": "W-MON", "1M": "MS"}


class Instrument(models.Model):
    symbol = models.CharField(max_length=32, unique=True, help_text="Our symbol, e.g. BTCUSDT, AAPL, NOKIA.")
    name = models.CharField(max_length=120, blank=True, default="")
    kind = models.CharField(max_length=10, choices=InstrumentKind.choices)
    exchange = models.CharField(max_length=20, help_text="BINANCE, NASDAQ, OMXH, …")
    exchange_symbol = models.CharField(max_length=32, help_text="The symbol at the exchange (Binance pair).")
    fractional = models.BooleanField(
        default=True, help_text="Fractional units may be traded (crypto); otherwise whole units (stocks)."
    )
    active = models.BooleanField(default=True, help_text="Active crypto instruments are fetched on schedule.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "symbol"]

    def __str__(self) -> str:
        return self.symbol

    @property
    def annual_days(self) -> int:
        """Trading days per year: 365 for 24/7 markets, 252 for stock exchanges."""
        return 365 if self.kind == InstrumentKind.CRYPTO else 252


class PriceBar(models.Model):
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="bars")
    interval = models.CharField(max_length=3, choices=Interval.choices)
    open_time = models.DateTimeField()
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField(default=0.0)

    class Meta:
        # The unique index (instrument, interval, open_time) also serves time-range reads.
        constraints = [
            models.UniqueConstraint(fields=["instrument", "interval", "open_time"], name="backtest_bar_unique_time"),
        ]
        ordering = ["instrument", "interval", "open_time"]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.interval} {self.open_time:%Y-%m-%d %H:%M}"


class CostFields(models.Model):
    commission_bps = models.FloatField(
        default=10.0, validators=[MinValueValidator(0), MaxValueValidator(500)],
        help_text="Commission in basis points of traded value, charged on entry and on exit.",
    )
    slippage_bps = models.FloatField(
        default=0.0, validators=[MinValueValidator(0), MaxValueValidator(500)],
        help_text="Slippage in basis points: every fill is this much worse than the open.",
    )
    initial_cash = models.FloatField(
        default=10_000.0, validators=[MinValueValidator(1), MaxValueValidator(1e12)]
    )

    class Meta:
        abstract = True


class BacktestResult(CostFields):
    """One computed backtest, content-addressed: identical inputs give the same `key`."""

    key = models.CharField(max_length=64, unique=True, help_text="sha256 of everything the result depends on.")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="+")
    interval = models.CharField(max_length=3, choices=Interval.choices)
    strategy = models.CharField(max_length=40)
    params = models.JSONField(default=dict, blank=True)
    fractional = models.BooleanField()
    data_start = models.DateTimeField()
    data_end = models.DateTimeField()
    bar_count = models.PositiveIntegerField()
    bars_hash = models.CharField(max_length=64)
    engine_version = models.CharField(max_length=20)
    metrics = models.JSONField(default=dict, blank=True)
    trades = models.JSONField(default=list, blank=True)
    open_trade = models.JSONField(null=True, blank=True)
    # {"t": [epoch seconds...], "equity": [...]} (drawdown is derived)
    equity = models.JSONField(default=dict)
    warmup = models.PositiveIntegerField(default=0)
    compute_ms = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.strategy} on {self.instrument_id} {self.interval} ({self.key[:10]})"


class RequestFields(CostFields):
    interval = models.CharField(max_length=3, choices=Interval.choices, default=Interval.H1)
    start = models.DateTimeField(null=True, blank=True, help_text="First bar (inclusive); empty = from the start.")
    end = models.DateTimeField(null=True, blank=True, help_text="Last bar (inclusive); empty = up to the latest.")
    strategy = models.CharField(max_length=40)

    class Meta:
        abstract = True


class BacktestRun(Job, RequestFields):
    """A single backtest requested by a user; computed by a worker or taken from the store."""

    task_func = "backtest.tasks.backtest_run_execute"
    title_related = ("instrument",)
    title_fields = ("strategy", "interval", "instrument__symbol")
    list_defer = ("error", "params")

    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="runs")
    params = models.JSONField(default=dict, blank=True)
    result = models.ForeignKey(BacktestResult, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs")
    reused = models.BooleanField(default=False, help_text="The result came from the store (identical request).")
    request_key = models.CharField(max_length=64, blank=True, default="", db_index=True)

    class Meta(Job.Meta):
        verbose_name = "backtest run"

    def job_title(self) -> str:
        return f"Backtest #{self.pk}: {self.strategy} on {self.instrument.symbol} {self.interval}"


class Sweep(Job, RequestFields):
    """A parameter grid (or a random sample of it) over one or more instruments."""

    task_func = "backtest.tasks.sweep_execute"
    list_defer = ("error", "grid", "param_sets")
    title_fields = ("strategy", "total")

    instruments = models.ManyToManyField(Instrument, related_name="sweeps")
    grid = models.JSONField(default=dict, help_text="Parameter name -> list of values.")
    sample = models.PositiveIntegerField(null=True, blank=True, help_text="Random sample size of the grid.")
    seed = models.IntegerField(default=0)
    combos = models.PositiveIntegerField(default=0, help_text="Parameter sets per instrument actually run.")
    total = models.PositiveIntegerField(default=0, help_text="Backtests to run (combos × instruments).")
    done = models.PositiveIntegerField(default=0)
    param_sets = models.JSONField(default=list, help_text="The parameter sets to run (expanded grid or sample).")
    skipped = models.PositiveIntegerField(default=0, help_text="Grid points dropped by the strategy's rules.")

    class Meta(Job.Meta):
        verbose_name = "parameter sweep"

    def job_title(self) -> str:
        return f"Sweep #{self.pk}: {self.strategy} ({self.total} backtests)"


class SweepResult(models.Model):
    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="results")
    seq = models.PositiveIntegerField()
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="+")
    index = models.PositiveIntegerField(null=True, blank=True, help_text="Position in the sweep's parameter sets.")
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sweep", "seq"], name="backtest_sweepresult_unique_seq"),
            # A chunk run twice (its task re-delivered) cannot store a combination twice.
            models.UniqueConstraint(fields=["sweep", "instrument", "index"], name="backtest_sweepresult_unique_index"),
        ]
        ordering = ["sweep", "seq"]


class BarImport(Job):
    """An uploaded OHLCV CSV imported into an instrument's bars (an idempotent upsert) in the background."""

    task_func = "backtest.tasks.bars_import_execute"
    title_related = ("instrument",)
    title_fields = ("filename", "interval", "instrument__symbol")
    list_defer = ("error", "report")
    requeue_safe = True  # an upsert: running it twice changes nothing

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="imports")
    interval = models.CharField(max_length=4, choices=Interval.choices)
    format = models.CharField(max_length=8, default="auto")
    file = models.FileField(upload_to="backtest/imports/%Y/%m/", blank=True,
                            help_text="The uploaded CSV; removed once imported.")
    filename = models.CharField(max_length=255, blank=True, default="")
    size = models.BigIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True,
                              help_text="Rows, new/updated, duplicates and invalid rows in the file, gaps.")

    class Meta(Job.Meta):
        verbose_name = "bar import"

    def job_title(self) -> str:
        return f"Import #{self.pk}: {self.filename} → {self.instrument.symbol} {self.interval}"


class WalkForwardMode(models.TextChoices):
    ROLLING = "rolling", "Rolling (the in-sample part moves)"
    ANCHORED = "anchored", "Anchored (the in-sample part starts at the first bar and grows)"


class WalkForward(Job, RequestFields):
    """Walk-forward optimization of one strategy on one instrument (rules in backtest.walkforward)."""

    task_func = "backtest.tasks.walkforward_execute"
    title_related = ("instrument",)
    title_fields = ("strategy", "interval", "instrument__symbol")
    list_defer = ("error", "grid", "param_sets", "windows", "equity", "metrics")

    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="walkforwards")
    grid = models.JSONField(default=dict, help_text="Parameter name -> list of values, swept in each window.")
    param_sets = models.JSONField(default=list, help_text="The parameter sets each in-sample part runs.")
    combos = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text="Grid points dropped by the strategy's rules.")
    mode = models.CharField(max_length=10, choices=WalkForwardMode.choices, default=WalkForwardMode.ROLLING)
    in_sample_bars = models.PositiveIntegerField(help_text="Bars in each in-sample part (anchored: the first).")
    out_of_sample_bars = models.PositiveIntegerField(help_text="Bars in each out-of-sample part.")
    step_bars = models.PositiveIntegerField(help_text="Bars between the starts of two windows (≥ out-of-sample).")
    metric = models.CharField(max_length=32, default="sharpe", help_text="The in-sample metric that picks the set.")
    window_count = models.PositiveIntegerField(default=0)
    windows_done = models.PositiveIntegerField(default=0)
    bar_count = models.PositiveIntegerField(default=0, help_text="Bars of the range, when it ran.")
    windows = models.JSONField(default=list, blank=True, help_text="Per window: bars, chosen set, IS and OOS metrics.")
    equity = models.JSONField(default=dict, blank=True, help_text='Stitched out-of-sample curve {"t": [...], "equity": [...]}.')
    metrics = models.JSONField(default=dict, blank=True, help_text="Metrics of the stitched out-of-sample curve.")

    class Meta(Job.Meta):
        verbose_name = "walk-forward optimization"

    def job_title(self) -> str:
        return f"Walk-forward #{self.pk}: {self.strategy} on {self.instrument.symbol} {self.interval}"


class Portfolio(Job, CostFields):
    """One run over several instruments with one shared cash balance (backtest.portfolio_engine)."""

    MODES = [("signals", "Per-instrument signals"), ("rebalance", "Rebalanced allocation")]
    WEIGHTINGS = [("equal", "Equal"), ("inverse_vol", "Inverse volatility")]
    REBALANCE_PERIODS = [("weekly", "Weekly"), ("monthly", "Monthly")]

    task_func = "backtest.tasks.portfolio_execute"
    list_defer = ("error", "params", "equity", "allocation", "trades", "contributions", "open_positions")
    title_fields = ("strategy", "mode", "rebalance", "weighting")

    instruments = models.ManyToManyField(Instrument, related_name="portfolios")
    interval = models.CharField(max_length=3, choices=Interval.choices, default=Interval.H1)
    start = models.DateTimeField(null=True, blank=True, help_text="First bar (inclusive); empty = from the start.")
    end = models.DateTimeField(null=True, blank=True, help_text="Last bar (inclusive); empty = up to the latest.")
    mode = models.CharField(max_length=10, choices=MODES, default="signals")
    weighting = models.CharField(max_length=12, choices=WEIGHTINGS, default="equal")
    vol_window = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(2), MaxValueValidator(5000)],
        help_text="Returns in the volatility of inverse-volatility weights.",
    )
    rebalance = models.CharField(max_length=8, choices=REBALANCE_PERIODS, default="monthly")
    strategy = models.CharField(max_length=40, blank=True, default="", help_text="Per-instrument signals only.")
    params = models.JSONField(default=dict, blank=True)
    # The result, once computed.
    bar_count = models.PositiveIntegerField(default=0, help_text="Bars on the union of the instruments' timestamps.")
    metrics = models.JSONField(default=dict, blank=True)
    contributions = models.JSONField(default=list, blank=True)
    equity = models.JSONField(default=dict, blank=True)  # {"t": [epoch seconds…], "equity": […]}
    allocation = models.JSONField(default=dict, blank=True)  # {"t", "symbols", "weights": [[…] per symbol], "cash"}
    trades = models.JSONField(default=list, blank=True)
    open_positions = models.JSONField(default=list, blank=True)
    orders = models.PositiveIntegerField(default=0)
    compute_ms = models.FloatField(default=0.0)

    class Meta(Job.Meta):
        verbose_name = "portfolio run"

    def job_title(self) -> str:
        what = self.strategy if self.mode == "signals" else f"{self.rebalance} rebalance"
        return f"Portfolio #{self.pk}: {what} ({self.get_weighting_display().lower()} weights)"
