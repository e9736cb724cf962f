"""What a portfolio holds and when it trades back to it (`backtest.portfolio_engine`).

Weights are equal or inverse volatility: 1 / the standard deviation of each instrument's last
`vol_window` close-to-close log returns known at the decision (at least two), normalized; a bar where
some instrument has no volatility yet uses equal weights. The rebalance schedule is the first bar of
each week or month, and the second bar (the first allocation). The buy & hold benchmark holds the
first weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from backtest.engine import Bars

if TYPE_CHECKING:
    from backtest.portfolio_engine import Aligned, PortfolioRules


def volatility_known(bars: Bars, window: int) -> np.ndarray:
    """Per own bar: the volatility known at its open (returns up to the previous close), NaN before two."""
    log_ret = np.r_[np.nan, np.diff(np.log(bars.close))]
    vol = pd.Series(log_ret).rolling(window, min_periods=2).std(ddof=1).to_numpy()
    return np.r_[np.nan, vol[:-1]]


def weights_matrix(*, aligned: Aligned, bars: list[Bars], rules: PortfolioRules) -> np.ndarray:
    """(instruments, union bars): the weights in force for orders at each union bar."""
    k, n = len(bars), len(aligned.time)
    equal = np.full((k, n), 1.0 / k)
    if rules.weighting == "equal":
        return equal
    vol = np.full((k, n), np.nan)
    for i, b in enumerate(bars):
        vol[i, aligned.where[i]] = volatility_known(b, rules.vol_window)
        # Between an instrument's bars its volatility stays what its last bar knew.
    vol = pd.DataFrame(vol.T).ffill().to_numpy().T
    with np.errstate(divide="ignore"):
        inverse = 1.0 / vol
    ok = np.all(np.isfinite(inverse) & (inverse > 0), axis=0)
    out = equal.copy()
    out[:, ok] = inverse[:, ok] / inverse[:, ok].sum(axis=0)
    return out


def benchmark(aligned: Aligned, weights0: np.ndarray) -> np.ndarray:
    """Buy & hold of the first weights, each bought at its first close: a value index on the union bars."""
    first = np.array([row[np.flatnonzero(~np.isnan(row))[0]] for row in aligned.close])
    growth = np.where(np.isnan(aligned.close), 1.0, aligned.close / first[:, None])
    return (weights0[:, None] * growth).sum(axis=0)


def rebalance_bars(time: np.ndarray, period: str) -> np.ndarray:
    """Union bars that open a new week (from Monday) or month (UTC), and the second bar: the first allocation
    is decided on the first close and filled at the next open, as every order is."""
    if len(time) < 2:
        return np.zeros(0, dtype=np.int64)
    stamps = pd.DatetimeIndex(np.asarray(time, dtype="int64") * 10**9)
    ordinals = stamps.to_period("W-SUN" if period == "weekly" else "M").asi8
    new = np.r_[False, True, ordinals[2:] != ordinals[1:-1]]
    return np.flatnonzero(new)
