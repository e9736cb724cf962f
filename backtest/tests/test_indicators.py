"""Indicators against independent references: exact sums (math.fsum) and pandas."""

import math

import numpy as np
import pandas as pd

from backtest import indicators as ind


def _wide_walk(n: int, seed: int = 3) -> np.ndarray:
    """A price that wanders over four orders of magnitude (tens to hundreds of thousands)."""
    rng = np.random.default_rng(seed)
    return np.exp(np.cumsum(rng.normal(0, 0.01, n))) * 100


def test_sma_is_exact_to_a_few_ulps_on_a_million_bars():
    price = _wide_walk(1_000_000)
    assert price.max() / price.min() > 1_000
    for window in (10, 20, 200):
        ours = ind.sma(price, window)
        assert np.isnan(ours[: window - 1]).all() and not np.isnan(ours[window - 1:]).any()
        # every 37th window and the last ones, where a single cumulative sum has drifted most
        idx = np.r_[np.arange(window - 1, len(price), 37), np.arange(len(price) - 50, len(price))]
        ref = np.array([math.fsum(price[i - window + 1: i + 1]) / window for i in idx])
        ulps = np.abs(ours[idx] - ref) / np.spacing(ref)
        assert ulps.max() <= 4, (window, ulps.max())


def test_sma_stays_exact_when_the_price_falls_by_ten_orders_of_magnitude():
    rng = np.random.default_rng(8)
    price = np.exp(np.cumsum(np.r_[rng.normal(0, 0.01, 300_000), rng.normal(-0.0008, 0.01, 300_000)])) * 1e5
    assert price.max() / price[-1] > 1e10
    for window in (20, 100):
        ours = ind.sma(price, window)
        idx = np.r_[np.arange(window - 1, len(price), 101), np.arange(len(price) - 3000, len(price))]
        ref = np.array([math.fsum(price[i - window + 1: i + 1]) / window for i in idx])
        ulps = np.abs(ours[idx] - ref) / np.spacing(ref)
        assert ulps.max() <= 4, (window, ulps.max())


def test_windows_across_block_edges_are_exact():
    rng = np.random.default_rng(2)
    price = rng.uniform(1, 1000, ind.BLOCK * 3 + 17)
    for window in (1, 2, 500, ind.BLOCK + 3):
        ours = ind.rolling_sum(price, window)
        idx = np.r_[window - 1, np.arange(ind.BLOCK - 3, ind.BLOCK + 3), np.arange(2 * ind.BLOCK - 2, 2 * ind.BLOCK + 2),
                    len(price) - 1]
        idx = idx[idx >= window - 1]
        ref = np.array([math.fsum(price[i - window + 1: i + 1]) for i in idx])
        assert (np.abs(ours[idx] - ref) / np.spacing(ref)).max() <= 2, window
        assert np.isnan(ours[: window - 1]).all()


def test_a_plain_cumulative_sum_would_not_be_exact_here():
    """The reference check above can fail: the old formula misses by far more than a few ulps."""
    price = _wide_walk(1_000_000)
    window = 20
    csum = np.cumsum(np.insert(price, 0, 0.0))
    old = (csum[window:] - csum[:-window]) / window
    idx = np.arange(len(price) - 1000, len(price))
    ref = np.array([math.fsum(price[i - window + 1: i + 1]) / window for i in idx])
    assert (np.abs(old[idx - window + 1] - ref) / np.spacing(ref)).max() > 1_000


def test_rolling_sum_edges():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    assert np.array_equal(ind.rolling_sum(values, 2)[1:], [3.0, 5.0, 7.0])
    assert np.isnan(ind.rolling_sum(values, 5)).all() and np.isnan(ind.sma(values, 0)).all()
    assert ind.sma(values, 4)[-1] == 2.5


def test_atr_is_wilders_smoothing_of_true_range():
    high = np.array([10.0, 12.0, 11.0, 15.0, 14.0])
    low = np.array([9.0, 10.0, 8.0, 12.0, 13.0])
    close = np.array([9.5, 11.0, 9.0, 14.0, 13.5])
    tr = np.array([1.0, 2.5, 3.0, 6.0, 1.0])  # first bar: high - low; then the widest of the three ranges
    assert np.allclose(ind.true_range(high, low, close), tr)
    ref = pd.Series(tr).ewm(alpha=1 / 3, adjust=False).mean().to_numpy()
    out = ind.atr(high, low, close, 3)
    assert np.isnan(out[:2]).all() and np.allclose(out[2:], ref[2:])
