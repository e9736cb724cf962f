"""Technical indicators on numpy arrays (float64, NaN until defined).

Each value at index i uses bars 0..i only, so no indicator can look ahead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def prefix_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Running sums with the exact rounding error of every addition (Knuth's two-sum).

    `sums[i] + errors[i]` is the sum of values[:i] to within a few ulps at any length, so a
    windowed sum taken as a difference of prefix sums stays exact even after a million bars over
    a wide price range (a plain cumulative sum drifts by about i ulps of its running total).
    """
    x = np.asarray(values, dtype=float)
    sums = np.empty(len(x) + 1)
    sums[0] = 0.0
    np.cumsum(x, out=sums[1:])  # a sequential accumulation: each step rounds once
    before, after = sums[:-1], sums[1:]
    # two-sum error of each step: (before - (after - virtual)) + (x - virtual), in place
    virtual = np.subtract(after, before)
    lost = np.subtract(after, virtual)
    np.subtract(before, lost, out=lost)
    np.subtract(x, virtual, out=virtual)
    lost += virtual
    errors = np.empty(len(x) + 1)
    errors[0] = 0.0
    np.cumsum(lost, out=errors[1:])
    return sums, errors


#: Outputs per block of a rolling sum: each block's prefix sums start afresh (see `rolling_sum`).
BLOCK = 8192


def rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum of the last `window` values; NaN for the first `window - 1` bars; exact to a few ulps.

    Prefix sums are re-based per block of outputs, so their size (and so their rounding) depends only
    on the prices near the window, not on everything before it: a series that falls from a million to a
    cent keeps its small sums exact. Within a block the two-sum errors make the difference exact.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    out = np.full(n, np.nan)
    if window <= 0 or window > n:
        return out
    for first in range(window - 1, n, BLOCK):
        last = min(n, first + BLOCK)
        sums, errors = prefix_sums(values[first - window + 1:last])
        body = out[first:last]
        np.subtract(sums[window:], sums[:-window], out=body)
        body += errors[window:] - errors[:-window]
    return out


def sma(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average; NaN for the first `window - 1` bars; exact to a few ulps at any length."""
    if window <= 0:
        return np.full(len(values), np.nan)
    out = rolling_sum(values, window)
    out /= window
    return out


def ema(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average (alpha = 2 / (span + 1)), NaN for the first `span - 1` bars."""
    return pd.Series(values).ewm(span=span, adjust=False, min_periods=span).mean().to_numpy()


def rolling_std(values: np.ndarray, window: int) -> np.ndarray:
    """Population standard deviation over `window` bars (as Bollinger defines it)."""
    return pd.Series(values).rolling(window).std(ddof=0).to_numpy()


def rsi(values: np.ndarray, period: int) -> np.ndarray:
    """Wilder's RSI (smoothing alpha = 1 / period); NaN for the first `period` bars."""
    delta = np.diff(values.astype(float), prepend=np.nan)
    gains = pd.Series(np.where(delta > 0, delta, 0.0))
    losses = pd.Series(np.where(delta < 0, -delta, 0.0))
    gains.iloc[0] = losses.iloc[0] = np.nan
    avg_gain = gains.ewm(alpha=1 / period, adjust=False, min_periods=period).mean().to_numpy()
    avg_loss = losses.ewm(alpha=1 / period, adjust=False, min_periods=period).mean().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rs = avg_gain / avg_loss
        out = 100.0 - 100.0 / (1.0 + rs)
    out = np.where((avg_loss == 0) & (avg_gain > 0), 100.0, out)
    out = np.where((avg_loss == 0) & (avg_gain == 0), 50.0, out)
    out[np.isnan(avg_gain) | np.isnan(avg_loss)] = np.nan
    return out


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """max(high - low, |high - previous close|, |low - previous close|); high - low on the first bar."""
    prev = shift(close)
    with np.errstate(invalid="ignore"):
        out = np.fmax(high - low, np.fmax(np.abs(high - prev), np.abs(low - prev)))
    return out


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's average true range (alpha = 1 / period); NaN for the first `period - 1` bars."""
    tr = true_range(high, low, close)
    return pd.Series(tr).ewm(alpha=1 / period, adjust=False, min_periods=period).mean().to_numpy()


def rolling_max(values: np.ndarray, window: int) -> np.ndarray:
    return pd.Series(values).rolling(window).max().to_numpy()


def rolling_min(values: np.ndarray, window: int) -> np.ndarray:
    return pd.Series(values).rolling(window).min().to_numpy()


def shift(values: np.ndarray, periods: int = 1) -> np.ndarray:
    """Values of `periods` bars earlier (NaN at the start)."""
    out = np.full(len(values), np.nan)
    if periods < len(values):
        out[periods:] = values[: len(values) - periods]
    return out


class IndicatorCache:
    """Memoizes indicators of one price series across the runs of a sweep."""

    def __init__(self) -> None:
        self._store: dict[tuple, np.ndarray] = {}

    def get(self, key: tuple, compute) -> np.ndarray:
        value = self._store.get(key)
        if value is None:
            value = compute()
            self._store[key] = value
        return value
