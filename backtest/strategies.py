"""The strategy registry: parameter schemas and vectorized signals.

A strategy turns bars into a *target position* per bar (+1 long, 0 flat,
-1 short), decided on that bar's close. The engine fills the change at the
next bar's open. Each strategy also returns its warm-up bar: the first bar
where all its indicators are defined; decisions start one bar later (so that
a crossover always has a previous value, as in backtesting.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from backtest import indicators as ind
from backtest.indicators import IndicatorCache
from backtest.params import (
    ENTRY_PARAM, EXECUTION_DEFAULTS, EXECUTION_PARAMS, Param, ParamError, execution_check, param_coerce,
)


SignalFunc = Callable[[Any, dict, IndicatorCache], tuple[np.ndarray, int]]


@dataclass(frozen=True)
class Strategy:
    key: str
    name: str
    description: str
    params: tuple[Param, ...]
    signals: SignalFunc
    # Cross-parameter rule: params -> {field: message} of violations.
    check: Callable[[dict], dict[str, str]] = field(default=lambda p: {})
    supports_short: bool = True
    #: A signal strategy can enter on the signal's state or only on its changes (`entry`).
    signal_entries: bool = True

    @property
    def execution_params(self) -> tuple[Param, ...]:
        """How a run of this strategy trades; left out of cleaned parameters while at their defaults."""
        return ((ENTRY_PARAM,) if self.signal_entries else ()) + EXECUTION_PARAMS

    @property
    def all_params(self) -> tuple[Param, ...]:
        return self.params + self.execution_params

    def schema(self) -> dict:
        return {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "supports_short": self.supports_short,
            "params": [p.as_schema() for p in self.params],
            "execution_params": [p.as_schema() for p in self.execution_params],
        }

    def defaults(self) -> dict:
        """The signal parameters' defaults (execution parameters at their defaults are simply absent)."""
        return {p.name: p.default for p in self.params}

    def rule_errors(self, params: dict) -> dict[str, str]:
        """Rules between parameters: the strategy's own and the execution parameters'."""
        return {**self.check(params), **execution_check(params)}


def first_valid(*arrays: np.ndarray) -> int:
    """Index of the first bar where every array is defined (len when never)."""
    n = len(arrays[0]) if arrays else 0
    worst = 0
    for arr in arrays:
        valid = ~np.isnan(arr)
        if not valid.any():
            return n
        worst = max(worst, int(valid.argmax()))
    return worst


def hold(enter: np.ndarray, leave: np.ndarray) -> np.ndarray:
    """1 from a bar where `enter` holds until a bar where `leave` holds (enter wins ties)."""
    events = np.full(len(enter), np.nan)
    events[leave] = 0.0
    events[enter] = 1.0
    return pd.Series(events).ffill().fillna(0.0).to_numpy()


def _side(long_cond: np.ndarray, allow_short: bool) -> np.ndarray:
    """Always-in-market from a boolean 'long' condition: +1 / (-1 or 0)."""
    return np.where(long_cond, 1.0, -1.0 if allow_short else 0.0)


# --- signal functions ------------------------------------------------------------


def _buy_hold(bars, params, cache):
    return np.ones(len(bars.close)), 0


def close_sma(bars, cache: IndicatorCache, window: int) -> np.ndarray:
    return cache.get(("sma", window), lambda: ind.sma(bars.close, window))


def _ma_cross(kind: str):
    def average(bars, cache, window):
        if kind == "sma":
            return close_sma(bars, cache, window)
        return cache.get((kind, window), lambda: ind.ema(bars.close, window))

    def signals(bars, params, cache):
        fast = average(bars, cache, params["fast"])
        slow = average(bars, cache, params["slow"])
        with np.errstate(invalid="ignore"):
            target = _side(fast > slow, params["allow_short"])
        return target, first_valid(fast, slow)

    return signals


def _rsi_reversion(bars, params, cache):
    rsi = cache.get(("rsi", params["period"]), lambda: ind.rsi(bars.close, params["period"]))
    with np.errstate(invalid="ignore"):
        oversold, overbought = rsi < params["lower"], rsi > params["upper"]
    target = hold(oversold, overbought)
    if params["allow_short"]:
        target = target - hold(overbought, oversold)
    return target, first_valid(rsi)


def _bollinger(bars, params, cache):
    period, width = params["period"], params["std"]
    mid = close_sma(bars, cache, period)
    sd = cache.get(("std", period), lambda: ind.rolling_std(bars.close, period))
    close = bars.close
    with np.errstate(invalid="ignore"):
        lower, upper = mid - width * sd, mid + width * sd
        target = hold(close < lower, close >= mid)
        if params["allow_short"]:
            target = target - hold(close > upper, close <= mid)
    return target, first_valid(mid, sd)


def _macd(bars, params, cache):
    fast = cache.get(("ema", params["fast"]), lambda: ind.ema(bars.close, params["fast"]))
    slow = cache.get(("ema", params["slow"]), lambda: ind.ema(bars.close, params["slow"]))
    line = fast - slow
    start = first_valid(line)
    signal = np.full(len(line), np.nan)
    if start < len(line):
        signal[start:] = ind.ema(line[start:], params["signal"])
    with np.errstate(invalid="ignore"):
        target = _side(line > signal, params["allow_short"])
    return target, first_valid(line, signal)


def _donchian(bars, params, cache):
    entry, leave = params["entry_period"], params["exit_period"]
    # Channels of the *previous* bars: today's close breaking yesterday's range.
    up_in = cache.get(("dc_hi", entry), lambda: ind.shift(ind.rolling_max(bars.high, entry)))
    lo_in = cache.get(("dc_lo", entry), lambda: ind.shift(ind.rolling_min(bars.low, entry)))
    up_out = cache.get(("dc_hi", leave), lambda: ind.shift(ind.rolling_max(bars.high, leave)))
    lo_out = cache.get(("dc_lo", leave), lambda: ind.shift(ind.rolling_min(bars.low, leave)))
    close = bars.close
    with np.errstate(invalid="ignore"):
        target = hold(close > up_in, close < lo_out)
        if params["allow_short"]:
            target = target - hold(close < lo_in, close > up_out)
    return target, first_valid(up_in, lo_in, up_out, lo_out)


def _fast_below_slow(params: dict) -> dict[str, str]:
    if params["fast"] >= params["slow"]:
        return {"fast": "The fast period must be shorter than the slow period."}
    return {}


def _lower_below_upper(params: dict) -> dict[str, str]:
    if params["lower"] >= params["upper"]:
        return {"lower": "The lower threshold must be below the upper threshold."}
    return {}


def _exit_not_longer(params: dict) -> dict[str, str]:
    if params["exit_period"] > params["entry_period"]:
        return {"exit_period": "The exit period must not exceed the entry period."}
    return {}


_SHORT = Param("allow_short", "bool", False, description="Go short on the opposite signal (else stay flat).")
STRATEGIES: dict[str, Strategy] = {
    s.key: s
    for s in [
        Strategy(
            "buy_hold", "Buy & hold", "Buy on the first tradable bar and hold to the end.", (), _buy_hold,
            supports_short=False, signal_entries=False,
        ),
        Strategy(
            "sma_cross", "SMA crossover",
            "Long while the fast simple moving average is above the slow one; flat (or short) otherwise.",
            (
                Param("fast", "int", 10, 2, 500, "Fast SMA period (bars)."),
                Param("slow", "int", 30, 3, 2000, "Slow SMA period (bars)."),
                _SHORT,
            ),
            _ma_cross("sma"), _fast_below_slow,
        ),
        Strategy(
            "ema_cross", "EMA crossover",
            "Long while the fast exponential moving average is above the slow one; flat (or short) otherwise.",
            (
                Param("fast", "int", 12, 2, 500, "Fast EMA span (bars)."),
                Param("slow", "int", 26, 3, 2000, "Slow EMA span (bars)."),
                _SHORT,
            ),
            _ma_cross("ema"), _fast_below_slow,
        ),
        Strategy(
            "rsi_reversion", "RSI mean reversion",
            "Buy when RSI falls below the lower threshold, sell when it rises above the upper one "
            "(short from the upper threshold until the lower one when shorting is allowed).",
            (
                Param("period", "int", 14, 2, 200, "RSI period (Wilder smoothing)."),
                Param("lower", "float", 30.0, 1, 99, "Oversold threshold."),
                Param("upper", "float", 70.0, 1, 99, "Overbought threshold."),
                _SHORT,
            ),
            _rsi_reversion, _lower_below_upper,
        ),
        Strategy(
            "bollinger", "Bollinger bands",
            "Buy a close below the lower band, exit at the middle band "
            "(short above the upper band, cover at the middle band).",
            (
                Param("period", "int", 20, 2, 500, "Moving-average period (bars)."),
                Param("std", "float", 2.0, 0.1, 5.0, "Band width in standard deviations."),
                _SHORT,
            ),
            _bollinger,
        ),
        Strategy(
            "macd", "MACD",
            "Long while the MACD line (fast EMA - slow EMA) is above its signal line; flat (or short) otherwise.",
            (
                Param("fast", "int", 12, 2, 500, "Fast EMA span."),
                Param("slow", "int", 26, 3, 1000, "Slow EMA span."),
                Param("signal", "int", 9, 2, 200, "Signal-line EMA span."),
                _SHORT,
            ),
            _macd, _fast_below_slow,
        ),
        Strategy(
            "donchian", "Donchian breakout",
            "Buy a close above the highest high of the previous N bars; exit below the lowest low of the "
            "previous M bars (mirror image for shorts).",
            (
                Param("entry_period", "int", 20, 2, 500, "Breakout channel length N (bars)."),
                Param("exit_period", "int", 10, 2, 500, "Exit channel length M (bars)."),
                _SHORT,
            ),
            _donchian, _exit_not_longer,
        ),
    ]
}


def strategy_get(key: str) -> Strategy:
    try:
        return STRATEGIES[key]
    except KeyError:
        raise ParamError({"strategy": f"Unknown strategy {key!r}; choose one of {', '.join(STRATEGIES)}."}) from None


def params_clean(strategy: Strategy, raw: dict | None) -> dict:
    """Defaults filled in, types coerced, ranges and cross-rules checked; raises ParamError."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamError({"params": "Must be an object of parameter values."})
    known = {p.name for p in strategy.all_params}
    errors = {name: f"Unknown parameter for {strategy.name}." for name in raw if name not in known}
    clean = {}
    for param in strategy.all_params:
        try:
            clean[param.name] = param_coerce(param, raw.get(param.name, param.default))
        except ValueError as exc:
            errors[param.name] = str(exc)
    if not errors:
        errors.update(strategy.rule_errors(clean))
    if errors:
        raise ParamError(errors)
    # Execution parameters at their defaults stay out, so a request's meaning (and key) reads the same.
    return {k: v for k, v in clean.items() if k not in EXECUTION_DEFAULTS or EXECUTION_DEFAULTS[k] != v}


def param_value_clean(strategy: Strategy, name: str, value: Any) -> Any:
    for param in strategy.all_params:
        if param.name == name:
            return param_coerce(param, value)
    raise ValueError(f"Unknown parameter for {strategy.name}.")
