"""Page forms: they parse and shape input; the services enforce the rules."""

from __future__ import annotations

import json

from django import forms

from backtest.metrics import METRICS
from backtest.models import Instrument, InstrumentKind, Interval
from backtest.strategies import STRATEGIES


def _json_object(text: str, *, what: str) -> dict:
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(f"{what} must be valid JSON ({exc.msg} at line {exc.lineno}).") from None
    if not isinstance(value, dict):
        raise forms.ValidationError(f"{what} must be a JSON object like {{\"fast\": 10}}.")
    return value


class _Common(forms.Form):
    interval = forms.ChoiceField(choices=Interval.choices, initial="1h")
    strategy = forms.ChoiceField(choices=[(k, s.name) for k, s in STRATEGIES.items()], initial="sma_cross")
    start = forms.DateTimeField(required=False, help_text="UTC, e.g. 2024-01-01 00:00; empty = all data",
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    end = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    commission_bps = forms.FloatField(min_value=0, max_value=500, initial=10.0, label="Commission (bps)")
    slippage_bps = forms.FloatField(min_value=0, max_value=500, initial=0.0, label="Slippage (bps)")
    initial_cash = forms.FloatField(min_value=1, max_value=1e12, initial=10_000.0, label="Initial cash")

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] >= data["end"]:
            self.add_error("end", "The end must be after the start.")
        return data


class RunForm(_Common):
    instrument = forms.ModelChoiceField(queryset=Instrument.objects.all(), to_field_name="symbol",
                                        empty_label=None)
    params = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="JSON object of parameters; omitted ones take their defaults.")
    field_order = ["instrument", "interval", "strategy", "params", "start", "end"]

    def clean_params(self):
        return _json_object(self.cleaned_data.get("params"), what="Parameters")


class SweepForm(_Common):
    instruments = forms.ModelMultipleChoiceField(queryset=Instrument.objects.all(), to_field_name="symbol",
                                                 widget=forms.CheckboxSelectMultiple)
    grid = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}),
                           initial='{"fast": {"start": 5, "stop": 50, "step": 5}, "slow": [60, 80, 100, 150, 200]}',
                           help_text='Parameter → list of values or {"start", "stop", "step"}; '
                                     "others take their defaults.")
    sample = forms.IntegerField(required=False, min_value=1, help_text="Random sample of the grid (optional).")
    seed = forms.IntegerField(required=False, min_value=0, initial=0)
    field_order = ["instruments", "interval", "strategy", "grid", "sample", "seed", "start", "end"]

    def clean_grid(self):
        grid = _json_object(self.cleaned_data.get("grid"), what="The grid")
        if not grid:
            raise forms.ValidationError("Give at least one parameter with its values.")
        return grid


class SortForm(forms.Form):
    """The sweep results table's `?sort=&dir=&page=`: a metric, a parameter, the instrument or the result number."""

    sort = forms.ChoiceField(choices=[(k, v[0]) for k, v in METRICS.items()], required=False, label="Sort by")
    dir = forms.ChoiceField(choices=[("desc", "high → low"), ("asc", "low → high")], required=False, label="Order")

    def __init__(self, *args, params: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sort"].choices = ([("seq", "#"), ("instrument", "Instrument")] + [(p, p) for p in params]
                                       + [(k, v[0]) for k, v in METRICS.items()])
        self.fields["sort"].initial, self.fields["dir"].initial = "sharpe", "desc"

    def ordering(self) -> tuple[str, str]:
        """(sort, dir); what is missing or not one of the choices is the default: best Sharpe first."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        sort = data.get("sort") or "sharpe"
        default_dir = "desc" if sort in METRICS else "asc"
        return sort, data.get("dir") or default_dir


class HeatmapForm(forms.Form):
    x = forms.ChoiceField(choices=[])
    y = forms.ChoiceField(choices=[])
    metric = forms.ChoiceField(choices=[(k, v[0]) for k, v in METRICS.items()], initial="sharpe")

    instrument = forms.TypedChoiceField(choices=[], required=False, coerce=int, empty_value=None)

    def __init__(self, *args, params: list[str], instruments=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["x"].choices = self.fields["y"].choices = [(p, p) for p in params]
        self.fields["instrument"].choices = [("", "best of all instruments")] + [(i.pk, i.symbol) for i in instruments]
        if params:
            self.fields["x"].initial = params[0]
            self.fields["y"].initial = params[1] if len(params) > 1 else params[0]


class ImportForm(forms.Form):
    """Upload of an OHLCV CSV into an instrument's bars (staff)."""

    file = forms.FileField(error_messages={"required": "Choose a CSV file to upload.",
                                           "empty": "The file is empty: choose a CSV with a header and data rows."},
                           help_text="Generic CSV with a header (time, open, high, low, close[, volume]) or a "
                                     "Binance kline CSV (ms or µs open times).")
    symbol = forms.CharField(max_length=32, help_text="An existing instrument, or a new one with kind and exchange.")
    interval = forms.ChoiceField(choices=Interval.choices, initial="1h")
    format = forms.ChoiceField(choices=[("auto", "detect"), ("generic", "generic OHLCV CSV"),
                                        ("binance", "Binance klines")], initial="auto")
    kind = forms.ChoiceField(choices=[("", "—")] + list(InstrumentKind.choices), required=False,
                             help_text="Only to create a new instrument.")
    exchange = forms.CharField(max_length=16, required=False, help_text="Only to create a new instrument: "
                                                                        "BINANCE, NASDAQ, OMXH…")

    def __init__(self, *args, too_large: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.too_large = too_large

    def clean(self):
        data = super().clean()
        if self.too_large:
            from backtest.market_services import bars_import_size_message

            self.errors.pop("file", None)
            self.add_error("file", bars_import_size_message(self.too_large, at_least=True))
            return data
        symbol = (data.get("symbol") or "").strip().upper()
        if symbol:
            instrument = Instrument.objects.filter(symbol=symbol).first()
            if instrument is None and not (data.get("kind") and (data.get("exchange") or "").strip()):
                self.add_error("symbol", f"Unknown instrument {symbol}: choose a kind and an exchange to create it.")
            data["instrument"] = instrument
            data["symbol"] = symbol
        return data


class PortfolioForm(_Common):
    """A portfolio run: the rules of each choice are in its help text (and backtest.portfolio_engine)."""

    instruments = forms.ModelMultipleChoiceField(
        queryset=Instrument.objects.all(), to_field_name="symbol", widget=forms.CheckboxSelectMultiple,
        help_text="Two or more. Bars are aligned on the union of their timestamps; an instrument without a bar at a "
                  "timestamp does not trade there.")
    mode = forms.ChoiceField(
        choices=[("signals", "Per-instrument signals"), ("rebalance", "Rebalanced allocation")], initial="signals",
        widget=forms.RadioSelect,
        help_text="Signals: the strategy trades each instrument on its own bars (long only), each entry taking its "
                  "weight's share of the free cash. Rebalanced: hold the weights, traded back to them every week or "
                  "month.")
    weighting = forms.ChoiceField(
        choices=[("equal", "Equal"), ("inverse_vol", "Inverse volatility")], initial="equal",
        help_text="Inverse volatility: 1 / standard deviation of the last returns known at the decision; equal "
                  "while an instrument has fewer than two returns.")
    vol_window = forms.IntegerField(min_value=2, max_value=5000, initial=30, label="Volatility window (bars)",
                                    help_text="Close-to-close log returns in each volatility (inverse volatility only).")
    rebalance = forms.ChoiceField(
        choices=[("weekly", "Weekly"), ("monthly", "Monthly")], initial="monthly",
        help_text="Rebalanced allocation only: on the first bar of each week (from Monday) or month, UTC. Commission "
                  "is charged on every order.")
    strategy = forms.ChoiceField(choices=[("", "— (rebalanced allocation)")] + [(k, s.name) for k, s in STRATEGIES.items()],
                                 required=False, initial="sma_cross",
                                 help_text="Per-instrument signals only; the same parameters for every instrument.")
    params = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), initial='{"fast": 10, "slow": 30}',
                             help_text="JSON object; omitted ones take their defaults. No allow_short or sizing: the "
                                       "portfolio sizes entries.")
    field_order = ["instruments", "interval", "mode", "weighting", "vol_window", "rebalance", "strategy", "params",
                   "start", "end"]

    def clean_params(self):
        return _json_object(self.cleaned_data.get("params"), what="Parameters")

    def clean(self):
        data = super().clean()
        if data.get("mode") == "rebalance":  # the strategy fields do not apply (the service refuses them if sent)
            data["strategy"], data["params"] = "", {}
        return data
