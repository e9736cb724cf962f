"""Each strategy's signals on hand-made series (values worked out by hand in the comments)."""

import numpy as np
import pandas as pd
import pytest

from backtest.engine import Bars
from backtest.indicators import IndicatorCache
from backtest.strategies import STRATEGIES, ParamError, params_clean


def bars_from(closes, highs=None, lows=None) -> Bars:
    c = np.asarray(closes, dtype=float)
    t = np.arange(len(c), dtype=np.int64) * 3600
    h = np.asarray(highs, dtype=float) if highs is not None else c.copy()
    lo = np.asarray(lows, dtype=float) if lows is not None else c.copy()
    return Bars(t, c.copy(), h, lo, c, np.ones(len(c)))


def signals(key, closes, **params):
    strategy = STRATEGIES[key]
    return strategy.signals(bars_from(closes), params_clean(strategy, params), IndicatorCache())


def test_buy_hold():
    target, warmup = signals("buy_hold", [1, 2, 3])
    assert target.tolist() == [1, 1, 1] and warmup == 0


def test_sma_cross():
    closes = [10, 10, 10, 10, 12, 14, 16, 14, 10, 8, 8, 8]
    # bar:  3: sma2 10 = sma4 10 -> not long; 4: 11 > 10.5; 5: 13 > 11.5; 6: 15 > 13; 7: 15 > 14;
    #       8: 12 < 13.5; 9: 9 < 12; 10: 8 < 10; 11: 8 < 8.5
    target, warmup = signals("sma_cross", closes, fast=2, slow=4)
    assert warmup == 3
    assert target[3:].tolist() == [0, 1, 1, 1, 1, 0, 0, 0, 0]
    target, _ = signals("sma_cross", closes, fast=2, slow=4, allow_short=True)
    assert target[3:].tolist() == [-1, 1, 1, 1, 1, -1, -1, -1, -1]


def test_ema_cross_against_the_definition():
    closes = [10, 9, 8, 7, 6, 7, 8, 9, 10, 11, 12, 13]
    target, warmup = signals("ema_cross", closes, fast=2, slow=4)
    s = pd.Series(closes, dtype=float)
    fast = s.ewm(span=2, adjust=False).mean()  # alpha 2/3
    slow = s.ewm(span=4, adjust=False).mean()  # alpha 2/5
    assert warmup == 3
    expected = (fast > slow).astype(float).to_numpy()
    assert target[3:].tolist() == expected[3:].tolist()
    assert target[4] == 0 and target[-1] == 1  # falling: flat; rising: long


def test_rsi_reversion():
    closes = [10, 9, 8, 7, 8, 9, 10, 11]
    # Wilder, period 2 (alpha 1/2): bar 2: gain 0, loss 1 -> RSI 0 (< 30: buy); bar 3 still 0;
    # bar 4: gain .5, loss .5 -> 50 (hold); bar 5: gain .75, loss .25 -> 75 (> 70: sell)
    target, warmup = signals("rsi_reversion", closes, period=2, lower=30, upper=70)
    assert warmup == 2
    assert target.tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
    target, _ = signals("rsi_reversion", closes, period=2, lower=30, upper=70, allow_short=True)
    assert target.tolist() == [0, 0, 1, 1, 1, -1, -1, -1]


def test_bollinger():
    closes = [10] * 10 + [7, 9.8, 10.5]
    # bar 10: window of nine 10s and one 7 -> the 7 is 3 population std below the mean (< 2: buy);
    # bar 11: mean 9.68, close 9.8 >= middle band -> exit
    target, warmup = signals("bollinger", closes, period=10, std=2.0)
    assert warmup == 9
    assert target.tolist() == [0] * 10 + [1, 0, 0]


def test_macd_against_the_definition():
    closes = list(np.r_[np.linspace(20, 10, 30), np.linspace(10, 25, 30)])
    target, warmup = signals("macd", closes, fast=3, slow=6, signal=3)
    s = pd.Series(closes)
    line = s.ewm(span=3, adjust=False, min_periods=3).mean() - s.ewm(span=6, adjust=False, min_periods=6).mean()
    signal = line.dropna().ewm(span=3, adjust=False, min_periods=3).mean().reindex(s.index)
    assert warmup == int(signal.first_valid_index())
    assert target[warmup:].tolist() == (line > signal).astype(float)[warmup:].tolist()
    assert target[-1] == 1


def test_donchian():
    closes = [10] * 6 + [11, 12, 13, 9]
    # bar 6: close 11 > highest high of bars 3..5 (10) -> buy; bar 9: 9 < lowest low of bars 7..8 (12) -> exit
    target, warmup = signals("donchian", closes, entry_period=3, exit_period=2)
    assert warmup == 3
    assert target.tolist() == [0] * 6 + [1, 1, 1, 0]
    target, _ = signals("donchian", [10] * 6 + [9, 8, 7, 12], entry_period=3, exit_period=2, allow_short=True)
    # bar 9: 12 breaks above the highest high of bars 6..8 (9): cover and go long
    assert target.tolist() == [0] * 6 + [-1, -1, -1, 1]


@pytest.mark.parametrize(
    "key, params, field",
    [
        ("sma_cross", {"fast": 30, "slow": 10}, "fast"),
        ("sma_cross", {"fast": 1}, "fast"),
        ("sma_cross", {"fast": 2.5}, "fast"),
        ("sma_cross", {"allow_short": "maybe"}, "allow_short"),
        ("rsi_reversion", {"lower": 80, "upper": 20}, "lower"),
        ("bollinger", {"std": "nan"}, "std"),
        ("donchian", {"entry_period": 5, "exit_period": 10}, "exit_period"),
        ("macd", {"zzz": 1}, "zzz"),
    ],
)
def test_parameter_errors(key, params, field):
    with pytest.raises(ParamError) as exc:
        params_clean(STRATEGIES[key], params)
    assert field in exc.value.errors


def test_schemas_list_types_defaults_and_ranges():
    for strategy in STRATEGIES.values():
        schema = strategy.schema()
        assert schema["key"] == strategy.key
        for p in schema["params"]:
            assert p["type"] in ("int", "float", "bool", "choice") and "default" in p
            if p["type"] == "choice":
                assert p["default"] in p["choices"]
        params_clean(strategy, strategy.defaults())  # defaults are valid
    assert len(STRATEGIES) == 7
