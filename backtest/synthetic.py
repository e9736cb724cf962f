"""Realistic synthetic OHLCV series for demos, tests and benchmarks.

Log returns follow regimes (bull / bear / sideways drift, calm / stormy
volatility) switching at random, with fat-tailed (Student t) shocks. Crypto
trades 24/7; stocks only on weekdays, within a 13:00–21:00 UTC session for
intraday bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


_DRIFTS = np.array([0.45, -0.35, 0.0])  # annual drift of bull, bear, sideways
_VOLS = np.array([0.35, 0.9])  # annual volatility of calm, stormy (crypto); stocks scaled down


def _timestamps(n: int, interval_seconds: int, start: pd.Timestamp, kind: str) -> pd.DatetimeIndex:
    if interval_seconds >= 7 * 86400:  # weekly and monthly bars follow the calendar in every market
        return pd.date_range(start, periods=n, freq="W-MON" if interval_seconds == 7 * 86400 else "MS")
    if kind == "crypto":
        return pd.date_range(start, periods=n, freq=pd.Timedelta(seconds=interval_seconds))
    out: list[pd.DatetimeIndex] = []
    have = 0
    cursor = start
    while have < n:
        chunk = pd.date_range(cursor, periods=max(n * 4, 1000), freq=pd.Timedelta(seconds=interval_seconds))
        weekday = chunk.dayofweek < 5
        if interval_seconds < 86400:
            weekday &= (chunk.hour >= 13) & (chunk.hour < 21)
        kept = chunk[weekday]
        out.append(kept)
        have += len(kept)
        cursor = chunk[-1] + pd.Timedelta(seconds=interval_seconds)
    return out[0].append(out[1:])[:n] if len(out) > 1 else out[0][:n]


def synthetic_bars(
    *,
    n: int,
    interval_seconds: int = 3600,
    start: str | pd.Timestamp = "2022-01-01",
    seed: int = 0,
    start_price: float = 100.0,
    kind: str = "crypto",
) -> pd.DataFrame:
    """A frame indexed by bar open time (naive UTC) with Open, High, Low, Close, Volume."""
    rng = np.random.default_rng(seed)
    index = _timestamps(n, interval_seconds, pd.Timestamp(start).floor("D"), kind)
    if interval_seconds >= 7 * 86400:
        bars_per_year = 52 if interval_seconds == 7 * 86400 else 12
    else:
        bars_per_year = (365 if kind == "crypto" else 252) * (
            86400 / interval_seconds if kind == "crypto" else max(1, min(8, 86400 // interval_seconds)))
    dt = 1 / bars_per_year
    # Regimes last ~1-3 months of bars on average.
    mean_len = max(20, int(bars_per_year / 6))
    trend = np.empty(n, dtype=int)
    storm = np.empty(n, dtype=int)
    i = 0
    while i < n:
        length = int(rng.geometric(1 / mean_len))
        trend[i:i + length] = rng.integers(0, 3)
        storm[i:i + length] = rng.random() < 0.3
        i += length
    vol_scale = 1.0 if kind == "crypto" else 0.45
    sigma = _VOLS[storm] * vol_scale
    mu = _DRIFTS[trend] * (1.0 if kind == "crypto" else 0.5)
    shocks = rng.standard_t(df=4, size=n) / np.sqrt(2.0)  # t(4) has variance 2
    log_ret = (mu - 0.5 * sigma**2) * dt + sigma * np.sqrt(dt) * shocks
    close = start_price * np.exp(np.cumsum(log_ret))
    prev = np.r_[start_price, close[:-1]]
    gap = rng.normal(0, sigma * np.sqrt(dt) * (0.05 if kind == "crypto" else 0.3))
    open_ = prev * np.exp(gap)
    wick = np.abs(rng.normal(0, sigma * np.sqrt(dt) * 0.6, size=(2, n)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    volume = rng.lognormal(mean=np.log(1000), sigma=0.4, size=n) * (1 + 40 * np.abs(log_ret))
    frame = pd.DataFrame(
        {"Open": open_, "High": high, "Low": low, "Close": close, "Volume": volume}, index=index
    )
    return frame.round({"Open": 6, "High": 6, "Low": 6, "Close": 6, "Volume": 4})
