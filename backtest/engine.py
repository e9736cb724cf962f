"""The vectorized backtest engine: signals → fills (see `fills`) → equity → metrics.

Semantics (shown next to every result, see `SEMANTICS`):
- a strategy decides a target position (+1, 0, -1) on each bar's close;
  decisions start the bar after its indicators are first defined;
- a change of target is filled at the *next* bar's open (how stops, targets,
  sizing and crossover entries fill is in `backtest.fills`);
- commission (basis points of the traded value) is charged on entry and exit;
  slippage (basis points) moves each fill price against the trader;
- equity is marked to each bar's close; a trade still open after the last bar
  is valued in the equity but not counted as a closed trade (as backtesting.py
  does without `finalize_trades`) unless `finalize_trades` closes it at the last
  close; if equity reaches zero the run stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from backtest import indicators as ind
from backtest import metrics as metrics_mod
from backtest.fills import END, EXIT_REASONS, Rules, fill_trades, held_positions
from backtest.indicators import IndicatorCache
from backtest.strategies import Strategy, first_valid

ENGINE_VERSION = "1.1"

SEMANTICS = [
    "Signals are computed on each bar's close; orders fill at the next bar's open (no look-ahead).",
    "Entry \"state\": hold the position while the signal says so. Entry \"cross\": take a position only where "
    "the signal changes; the first position at the first change.",
    "Sizing: a fraction of equity (all of it by default) or a fixed number of units; whole units for stocks, "
    "fractional units for crypto. An entry cash cannot pay for is retried while the signal holds (state) "
    "or dropped (cross).",
    "Stops, targets and trailing stops rest from the entry bar on: hit when the bar's low (high for a short) "
    "crosses them, filled at their level, or at the open when the bar opens beyond them; when stop and target "
    "both lie inside one bar, the stop fills first. The trailing stop follows the best close before each bar.",
    "After a stop or target exit the position is re-entered only on the next change of signal.",
    "Commission (bps of traded value) is charged on entry and on exit; slippage (bps) worsens every fill.",
    "A reversal closes the open trade and opens the opposite one at the same open.",
    "A trade still open at the end is marked to market in equity but not counted in trade statistics "
    "(unless finalize_trades closes it at the last close); its time and entry commission count in exposure "
    "and commissions.",
    "Annualization follows the bars' spacing: 52 periods a year for weekly bars, 12 for monthly; otherwise "
    "365 days for 24/7 (crypto) markets, 252 for stocks.",
]


@dataclass
class Bars:
    """OHLCV arrays of one instrument and interval; `time` is the bar open in epoch seconds (UTC)."""

    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    # Per-series values every backtest's metrics need; computed once (see `prepared`).
    _prepared: dict | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.close)

    def prepared(self) -> dict:
        """Index of each UTC day's last bar and the close log returns (shared by a sweep's runs)."""
        if self._prepared is None:
            day = self.time // 86400
            with np.errstate(divide="ignore", invalid="ignore"):
                market_log = np.log(self.close[1:] / self.close[:-1])
            self._prepared = {
                "day_ends": np.r_[np.flatnonzero(np.diff(day) != 0), len(day) - 1],
                "market_log": market_log,
            }
        return self._prepared

    def head(self, count: int) -> Bars:
        """The first `count` bars (what was known at the close of bar `count - 1`)."""
        return Bars(*(getattr(self, f)[:count].copy() for f in ("time", "open", "high", "low", "close", "volume")))

    @classmethod
    def from_rows(cls, rows) -> Bars:
        """From (time_seconds, open, high, low, close, volume) tuples."""
        arr = np.asarray(list(rows), dtype=float).reshape(-1, 6)
        return cls(arr[:, 0].astype(np.int64), *(np.ascontiguousarray(arr[:, i]) for i in range(1, 6)))

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> Bars:
        """From a frame with a DatetimeIndex (UTC) and Open/High/Low/Close[/Volume] columns."""
        index = pd.DatetimeIndex(df.index)
        seconds = (index.as_unit("s").asi8 if index.tz is None else index.tz_convert("UTC").as_unit("s").asi8)
        get = lambda name: df[name].to_numpy(dtype=float)  # noqa: E731
        volume = get("Volume") if "Volume" in df else np.zeros(len(df))
        return cls(seconds.astype(np.int64), get("Open"), get("High"), get("Low"), get("Close"), volume)


@dataclass(frozen=True)
class Costs:
    initial_cash: float = 10_000.0
    commission_bps: float = 0.0
    slippage_bps: float = 0.0
    fractional: bool = True


@dataclass
class TradeArrays:
    """Closed trades, one array per field (cheap for sweeps)."""

    side: np.ndarray
    size: np.ndarray
    entry_bar: np.ndarray
    exit_bar: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    pnl: np.ndarray
    return_pct: np.ndarray  # fraction, net of commission
    commission: np.ndarray
    reason: np.ndarray  # why each trade closed: an index into fills.EXIT_REASONS

    def __len__(self) -> int:
        return len(self.pnl)

    def where(self, keep: np.ndarray) -> TradeArrays:
        return TradeArrays(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    def append(self, **row) -> TradeArrays:
        return TradeArrays(**{f.name: np.append(getattr(self, f.name), row[f.name]).astype(getattr(self, f.name).dtype)
                              for f in fields(self)})


@dataclass
class EngineResult:
    equity: np.ndarray
    trades: TradeArrays
    open_trade: dict | None
    warmup: int
    metrics: dict = field(default_factory=dict)

    def trade_dicts(self, bars: Bars) -> list[dict]:
        t = self.trades
        return [
            {
                "side": "long" if t.side[i] > 0 else "short",
                "size": float(t.size[i]),
                "entry_bar": int(t.entry_bar[i]),
                "exit_bar": int(t.exit_bar[i]),
                "entry_time": int(bars.time[t.entry_bar[i]]),
                "exit_time": int(bars.time[t.exit_bar[i]]),
                "entry_price": float(t.entry_price[i]),
                "exit_price": float(t.exit_price[i]),
                "pnl": float(t.pnl[i]),
                "return_pct": float(t.return_pct[i] * 100),
                "commission": float(t.commission[i]),
                "exit_reason": EXIT_REASONS[t.reason[i]],
            }
            for i in range(len(t))
        ]


def simulate(bars: Bars, target: np.ndarray, warmup: int, costs: Costs, rules: Rules = Rules(),
             atr: np.ndarray | None = None) -> EngineResult:
    """Fill the target positions by `rules`, mark equity to closes, stop the run if it goes broke."""
    n = len(bars)
    rate, slip = costs.commission_bps / 1e4, costs.slippage_bps / 1e4
    fills = fill_trades(
        open_=bars.open, high=bars.high, low=bars.low, close=bars.close,
        held=held_positions(target, warmup, rules.entry), cash=float(costs.initial_cash), rate=rate, slip=slip,
        fractional=costs.fractional, rules=rules, atr=atr,
    )
    position = fills.open_position
    ev_bar, ev_cash, ev_size, ev_entry = fills.events
    closes = bars.close
    equity = _mark_to_market(n, closes, costs.initial_cash, ev_bar, ev_cash, ev_size, ev_entry)
    trades = TradeArrays(**fills.trades)
    broke = np.flatnonzero(equity <= 0)
    if len(broke):  # out of money: close at that close, stop trading
        k = int(broke[0])
        trades = trades.where(trades.exit_bar <= k)
        s = _value_at(k, ev_bar, ev_size)
        if s:
            e, b = float(_value_at(k, ev_bar, ev_entry)), int(_value_at(k, ev_bar, ev_bar))
            side = 1.0 if s > 0 else -1.0
            commission = abs(s) * e * rate + abs(s) * closes[k] * rate
            ret = side * (closes[k] / e - 1) - commission / (abs(s) * e)
            trades = trades.append(side=side, size=abs(s), entry_bar=b, exit_bar=k, entry_price=e,
                                   exit_price=closes[k], pnl=s * (closes[k] - e) - commission, return_pct=ret,
                                   commission=commission, reason=END)
        equity[k:] = 0.0
        position = None

    open_trade = None
    if position and n:
        size, entry_bar, entry_price = position["size"], position["entry_bar"], position["entry_price"]
        open_trade = {
            "side": "long" if size > 0 else "short", "size": float(abs(size)), "entry_bar": int(entry_bar),
            "entry_time": int(bars.time[entry_bar]), "entry_price": float(entry_price),
            "commission": float(position["commission"]),
            "unrealized_pnl": float(size * (closes[-1] - entry_price)),
        }
    return EngineResult(equity=equity, trades=trades, open_trade=open_trade, warmup=int(min(warmup, max(n - 1, 0))))


def _value_at(k, ev_bar, values):
    i = int(np.searchsorted(ev_bar, k, side="right")) - 1
    return values[i] if i >= 0 else 0.0


def _mark_to_market(n, closes, initial_cash, ev_bar, ev_cash, ev_size, ev_entry) -> np.ndarray:
    if not len(ev_bar):
        return np.full(n, float(initial_cash))
    # Each event holds from its bar to the next event's bar; before the first, only cash.
    lengths = np.diff(np.r_[0, ev_bar, n])
    cash = np.repeat(np.r_[float(initial_cash), ev_cash], lengths)
    size = np.repeat(np.r_[0.0, ev_size], lengths)
    entry = np.repeat(np.r_[0.0, ev_entry], lengths)
    return cash + size * (closes - entry)


def run_backtest(
    *,
    bars: Bars,
    strategy: Strategy,
    params: dict,
    costs: Costs,
    annual_days: int,
    cache: IndicatorCache | None = None,
) -> EngineResult:
    """Signals → fills → equity → metrics for one parameter set (params already cleaned)."""
    if len(bars) < 2:
        raise ValueError("At least two bars are needed for a backtest.")
    cache = cache or IndicatorCache()
    target, warmup = strategy.signals(bars, params, cache)
    rules = Rules.from_params(params)
    atr = None
    if rules.uses_atr:
        period = rules.atr_period
        atr = cache.get(("atr", period), lambda: ind.atr(bars.high, bars.low, bars.close, period))
        warmup = max(warmup, first_valid(atr))
    result = simulate(bars, target, warmup, costs, rules, atr)
    result.metrics = metrics_mod.compute_metrics(
        time=bars.time, equity=result.equity, close=bars.close, trades=result.trades,
        warmup=result.warmup, annual_days=annual_days, open_trade=result.open_trade, **bars.prepared(),
    )
    return result
