"""Portfolios of several instruments with one shared cash balance.

Two modes (rules shown beside every portfolio result, see `PORTFOLIO_RULES`):

- `signals`: one strategy decides each instrument's position on that instrument's own bars (the
  single-run signals and `fills.held_positions`, so `entry` state/cross means the same); long only.
  An entry takes its share of the *free* cash: cash × w_i / (sum of w_j over the instruments holding no
  position, itself included). With every instrument flat the capital is split by the weights; the cash of
  a closed position goes back to the pool. Stops, targets and trailing stops follow `fills._Exits`.
- `rebalance`: hold target weights, traded back to them on the first bar of each week or month (and on
  the second bar, the first allocation): the portfolio is valued at the open, each instrument's target is
  w_i × value / open; sells go first, then buys in the instruments' order, each limited by the cash left;
  commission is paid on every order.

Weights are equal or inverse volatility: 1 / the standard deviation of each instrument's last
`vol_window` close-to-close log returns known at the decision (at least two), normalized; a bar where
some instrument has no volatility yet uses equal weights.

Bars are aligned on the union of every instrument's timestamps. An instrument without a bar at a
timestamp does not trade there (no order is ever filled at a carried price); for equity its position
is valued at its last close.

Only the bars where something happens are walked in Python; equity is marked to market with numpy.
"""

from __future__ import annotations

import heapq
import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from backtest import metrics as metrics_mod
from backtest.engine import Bars, Costs, TradeArrays
from backtest.fills import EXIT_REASONS, SIGNAL, Rules, _Exits, held_positions
from backtest.indicators import IndicatorCache, atr as atr_indicator
from backtest.portfolio_weights import benchmark, rebalance_bars, weights_matrix
from backtest.strategies import Strategy, first_valid

_ALMOST_ONE = 1 - sys.float_info.epsilon

MODES = ("signals", "rebalance")
WEIGHTINGS = ("equal", "inverse_vol")
REBALANCE_PERIODS = ("weekly", "monthly")

PORTFOLIO_RULES = [
    "Bars of all instruments are aligned on the union of their timestamps. An instrument without a bar at a "
    "timestamp does not trade there; for equity its position is valued at its last close (never filled at it).",
    "One cash balance is shared by every instrument; long positions only.",
    "Per-instrument signals: the strategy decides each instrument's position on its own bars, filled at its next "
    "bar's open, as in single runs. An entry takes its share of the free cash: cash × w / (sum of the weights of "
    "the instruments holding no position, its own included): with all flat the capital is split by the weights, "
    "and a closed position's cash returns to the pool. At one open exits fill before entries. An entry that "
    "cannot buy one unit is dropped until the next change of signal.",
    "Rebalanced allocation: on the first bar of each week (from Monday) or month (UTC), and on the second bar "
    "(the first allocation, decided on the first close), the portfolio is valued at the open and each instrument "
    "is traded to weight × value / open; sells first, then buys in the instruments' order, each limited by the "
    "cash left. Commission is charged on every order.",
    "Weights: equal, or inverse volatility (1 / standard deviation of the last vol_window close-to-close log "
    "returns known at the decision, normalized); while an instrument has fewer than two returns, equal weights.",
    "Metrics are the single runs' metrics of the portfolio's equity; buy & hold is the same weights bought at "
    "each instrument's first close and held. Rebalancing makes orders, not round-trip trades: its trade "
    "statistics are empty.",
    "An instrument's contribution is its realized and unrealized P&L net of commissions; the contributions add "
    "up to the portfolio's P&L.",
]


@dataclass(frozen=True)
class PortfolioRules:
    mode: str = "signals"
    weighting: str = "equal"
    vol_window: int = 30
    rebalance: str = "monthly"


@dataclass
class Aligned:
    """Every instrument's bars on the union of their timestamps."""

    time: np.ndarray  # union of bar open times (epoch seconds), ascending
    where: list[np.ndarray]  # per instrument: the union index of each of its own bars
    close: np.ndarray  # (instruments, union bars): last close known at each union bar (NaN before the first)
    has_bar: np.ndarray  # (instruments, union bars) bool

    @classmethod
    def of(cls, bars: list[Bars]) -> Aligned:
        time = np.unique(np.concatenate([b.time for b in bars])) if bars else np.zeros(0, dtype=np.int64)
        where = [np.searchsorted(time, b.time) for b in bars]
        close = np.full((len(bars), len(time)), np.nan)
        has_bar = np.zeros((len(bars), len(time)), dtype=bool)
        for i, (b, w) in enumerate(zip(bars, where)):
            close[i, w] = b.close
            has_bar[i, w] = True
        close = pd.DataFrame(close.T).ffill().to_numpy().T  # valuation only: carried last close
        return cls(time=time, where=where, close=close, has_bar=has_bar)


@dataclass
class PortfolioResult:
    time: np.ndarray
    equity: np.ndarray
    cash: np.ndarray
    units: np.ndarray  # (instruments, union bars): units held at each bar's close
    close: np.ndarray  # (instruments, union bars): the closes positions are valued at (carried over missing bars)
    trades: list[dict]  # closed trades (signals mode), union bar indices
    orders: int  # fills of any kind
    open_positions: list[dict]
    contributions: list[dict]
    warmup: int
    metrics: dict = field(default_factory=dict)

    def allocation(self) -> np.ndarray:
        """(instruments, union bars): each instrument's share of equity at each close."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.nan_to_num(self.units * np.nan_to_num(self.close) / self.equity)


def _step(n: int, bars_at: list[int], values: list[float], before: float) -> np.ndarray:
    """A value that changes at the given union bars (several changes per bar: the last wins), as a series."""
    if not bars_at:
        return np.full(n, float(before))
    at = np.asarray(bars_at, dtype=np.int64)
    vals = np.asarray(values, dtype=float)
    last = np.r_[at[1:] != at[:-1], True]  # the last change within each bar
    at, vals = at[last], vals[last]
    lengths = np.diff(np.r_[0, at, n])
    return np.repeat(np.r_[float(before), vals], lengths)


class _Book:
    """Cash, units and what happened, in the order the fills happen."""

    def __init__(self, *, k: int, cash: float, rate: float, slip: float, round_trips: bool = True):
        self.cash, self.rate, self.slip = float(cash), rate, slip
        self.round_trips = round_trips  # signals mode: a sale of the whole position closes a trade
        self.units = [0.0] * k
        self.entry = [0.0] * k  # fill price of the open position (signals mode)
        self.entry_bar = [-1] * k
        self.entry_commission = [0.0] * k
        self.flows = [0.0] * k  # cash paid out (−) and received (+) per instrument
        self.cash_at: tuple[list[int], list[float]] = ([], [])
        self.units_at: list[tuple[list[int], list[float]]] = [([], []) for _ in range(k)]
        self.trades: list[dict] = []
        self.orders = 0
        self.commissions = 0.0
        self.commission_of = [0.0] * k

    def _record(self, i: int, t: int) -> None:
        self.cash_at[0].append(t), self.cash_at[1].append(self.cash)
        self.units_at[i][0].append(t), self.units_at[i][1].append(self.units[i])
        self.orders += 1

    def buy(self, i: int, t: int, price: float, units: float) -> None:
        fill = price * (1 + self.slip)
        commission = units * fill * self.rate
        paid = units * fill + commission
        self.commissions += commission
        self.commission_of[i] += commission
        self.cash -= paid
        self.flows[i] -= paid
        if not self.units[i]:
            self.entry[i], self.entry_bar[i], self.entry_commission[i] = fill, t, commission
        self.units[i] += units
        self._record(i, t)

    def sell(self, i: int, t: int, price: float, units: float, reason: int = SIGNAL) -> None:
        fill = price * (1 - self.slip)
        received = units * fill * (1 - self.rate)
        self.commissions += units * fill * self.rate
        self.commission_of[i] += units * fill * self.rate
        self.cash += received
        self.flows[i] += received
        if units >= self.units[i] and self.round_trips:  # the whole position: a closed trade
            size, entry = self.units[i], self.entry[i]
            commission = size * entry * self.rate + size * fill * self.rate
            self.trades.append({
                "instrument": i, "size": size, "entry_bar": self.entry_bar[i], "exit_bar": t,
                "entry_price": entry, "exit_price": fill, "commission": commission,
                "pnl": size * (fill - entry) - commission,
                "return_pct": fill / entry - 1 - commission / (size * entry), "reason": reason,
            })
        self.units[i] = 0.0 if units >= self.units[i] else self.units[i] - units
        self._record(i, t)

    def per_unit_cost(self, price: float) -> float:
        fill = price * (1 + self.slip)
        return fill + (_ALMOST_ONE * fill * self.rate) / _ALMOST_ONE


def _affordable(budget: float, per_unit: float, fractional: bool) -> float:
    if budget <= 0 or per_unit <= 0:
        return 0.0
    units = budget * _ALMOST_ONE / per_unit
    return units if fractional else float(int(units))


def _signals_fills(book: _Book, *, bars: list[Bars], aligned: Aligned, weights: np.ndarray, strategy: Strategy,
                   params: dict, fractional: list[bool]) -> int:
    """Per-instrument signals on one cash balance. Returns the warm-up bar (union index) of the earliest."""
    rules = Rules.from_params(params)
    heap: list[tuple] = []
    exits: list[_Exits | None] = []
    next_change: list[dict[int, int]] = []
    warmups = []
    for i, b in enumerate(bars):
        cache = IndicatorCache()
        target, warmup = strategy.signals(b, params, cache)
        atr = None
        if rules.uses_atr:
            atr = cache.get(("atr", rules.atr_period), lambda: atr_indicator(b.high, b.low, b.close, rules.atr_period))
            warmup = max(warmup, first_valid(atr))
        warmup = int(min(warmup, len(b) - 1))
        warmups.append(int(aligned.where[i][warmup]))
        held = np.maximum(held_positions(target, warmup, rules.entry), 0.0)  # long only
        changes = np.flatnonzero(np.diff(held, prepend=0.0) != 0)
        following = np.r_[changes[1:], len(b)]
        next_change.append(dict(zip(changes.tolist(), following.tolist())))
        for j in changes.tolist():
            # At one open: exits first (phase 0), then entries (phase 1); stops inside a bar come after (2).
            heapq.heappush(heap, (int(aligned.where[i][j]), 1 if held[j] else 0, i, j, None))
        exits.append(_Exits(b.open, b.high, b.low, b.close, rules, atr) if rules.has_exits else None)

    while heap:
        t, phase, i, j, stop = heapq.heappop(heap)
        b = bars[i]
        if phase == 0:
            if book.units[i]:
                book.sell(i, t, float(b.open[j]), book.units[i], SIGNAL)
        elif phase == 2:
            if book.units[i]:
                book.sell(i, t, stop[0], book.units[i], stop[1])  # at the level (or the open), then slippage
        else:
            if book.units[i] or book.cash <= 0:
                continue
            w = weights[:, t]
            free = float(w[np.asarray(book.units) == 0].sum())
            price = float(b.open[j])
            units = _affordable(book.cash * w[i] / free, book.per_unit_cost(price), fractional[i])
            if not units > 0:
                continue
            book.buy(i, t, price, units)
            if exits[i] is not None:
                hit = exits[i].first_exit(j, next_change[i][j], book.units[i], book.entry[i])
                if hit:
                    bar, level, reason = hit
                    heapq.heappush(heap, (int(aligned.where[i][bar]), 2, i, bar, (level, reason)))
    return min(warmups)


def _rebalance_fills(book: _Book, *, bars: list[Bars], aligned: Aligned, weights: np.ndarray, period: str,
                     fractional: list[bool]) -> int:
    k = len(bars)
    own = [np.full(len(aligned.time), -1, dtype=np.int64) for _ in range(k)]
    for i in range(k):
        own[i][aligned.where[i]] = np.arange(len(bars[i]))
    for t in rebalance_bars(aligned.time, period).tolist():
        prices = {}
        value = book.cash
        for i in range(k):
            j = int(own[i][t])
            if j >= 0:
                prices[i] = float(bars[i].open[j])
                value += book.units[i] * prices[i]
            elif book.units[i]:
                value += book.units[i] * float(aligned.close[i, t - 1])  # no bar here: valued at its last close
        orders = []
        for i, price in prices.items():
            target = weights[i, t] * value / price
            if not fractional[i]:
                target = float(int(target))
            delta = target - book.units[i]
            if delta:
                orders.append((delta * price, i, delta))
        orders.sort(key=lambda order: (order[0] > 0, order[1]))  # sells first, then buys; each in instrument order
        for _, i, delta in orders:
            price = prices[i]
            if delta < 0:
                book.sell(i, t, price, min(-delta, book.units[i]))
            else:
                units = min(delta, _affordable(book.cash, book.per_unit_cost(price), fractional[i]))
                if units > 0:
                    book.buy(i, t, price, units)
    return 0


def run_portfolio(*, bars: list[Bars], symbols: list[str], fractional: list[bool], rules: PortfolioRules,
                  costs: Costs, annual_days: int, strategy: Strategy | None = None, params: dict | None = None,
                  ) -> PortfolioResult:
    """Align, fill on one cash balance, mark to market, and compute the single runs' metrics of the equity."""
    if len(bars) < 2:
        raise ValueError("A portfolio needs at least two instruments.")
    if any(len(b) < 2 for b in bars):
        raise ValueError("Every instrument needs at least two bars.")
    aligned = Aligned.of(bars)
    n, k = len(aligned.time), len(bars)
    weights = weights_matrix(aligned=aligned, bars=bars, rules=rules)
    book = _Book(k=k, cash=costs.initial_cash, rate=costs.commission_bps / 1e4, slip=costs.slippage_bps / 1e4,
                 round_trips=rules.mode == "signals")
    if rules.mode == "signals":
        if strategy is None:
            raise ValueError("Per-instrument signals need a strategy.")
        warmup = _signals_fills(book, bars=bars, aligned=aligned, weights=weights, strategy=strategy,
                                params=params or {}, fractional=fractional)
    else:
        warmup = _rebalance_fills(book, bars=bars, aligned=aligned, weights=weights, period=rules.rebalance,
                                  fractional=fractional)

    cash = _step(n, *book.cash_at, before=costs.initial_cash)
    units = np.vstack([_step(n, *book.units_at[i], before=0.0) for i in range(k)])
    equity = cash + (units * np.nan_to_num(aligned.close)).sum(axis=0)

    closed = sorted(book.trades, key=lambda tr: (tr["exit_bar"], tr["instrument"]))
    trade_arrays = _trade_arrays(closed)
    last_close = aligned.close[:, -1]
    open_positions = [
        {"instrument": i, "symbol": symbols[i], "size": book.units[i], "entry_bar": book.entry_bar[i],
         "entry_time": int(aligned.time[book.entry_bar[i]]), "entry_price": book.entry[i],
         "commission": book.entry_commission[i],
         "unrealized_pnl": book.units[i] * (float(last_close[i]) - book.entry[i])}
        for i in range(k) if book.units[i]
    ]
    held_from = np.flatnonzero(units.sum(axis=0) > 0)
    if rules.mode == "signals":
        # Exposure counts the bars any position is open; one stand-in for every still-open position.
        open_stand_in = {"entry_bar": min(p["entry_bar"] for p in open_positions),
                         "commission": sum(p["commission"] for p in open_positions)} if open_positions else None
    else:  # no round trips: exposure from the first holding bar, every order's commission
        open_stand_in = ({"entry_bar": int(held_from[0]), "commission": book.commissions}
                         if len(held_from) else None)
    bench = benchmark(aligned, weights[:, 0])
    metrics = metrics_mod.compute_metrics(
        time=aligned.time, equity=equity, close=bench, trades=trade_arrays, warmup=0 if rules.mode != "signals"
        else warmup, annual_days=annual_days, open_trade=open_stand_in,
    )
    initial = float(costs.initial_cash)
    contributions = []
    for i in range(k):
        pnl = book.flows[i] + book.units[i] * float(last_close[i])
        own = [tr for tr in closed if tr["instrument"] == i]
        contributions.append({
            "symbol": symbols[i], "pnl": pnl, "contribution_pct": pnl / initial * 100, "trades": len(own),
            "commissions": book.commission_of[i],
            "final_weight_pct": float(units[i, -1] * last_close[i] / equity[-1] * 100) if equity[-1] else 0.0,
            "bars": int(len(bars[i])),
        })
    for tr in closed:
        tr["symbol"] = symbols[tr["instrument"]]
    return PortfolioResult(time=aligned.time, equity=equity, cash=cash, units=units, close=aligned.close, trades=closed,
                           orders=book.orders, open_positions=open_positions, contributions=contributions,
                           warmup=warmup, metrics=metrics)


def _trade_arrays(closed: list[dict]) -> TradeArrays:
    col = lambda name, dtype=float: np.asarray([tr[name] for tr in closed], dtype=dtype)  # noqa: E731
    return TradeArrays(
        side=np.ones(len(closed)), size=col("size"), entry_bar=col("entry_bar", np.int64),
        exit_bar=col("exit_bar", np.int64), entry_price=col("entry_price"), exit_price=col("exit_price"),
        pnl=col("pnl"), return_pct=col("return_pct"), commission=col("commission"),
        reason=col("reason", np.int8),
    )


def trade_dicts(result: PortfolioResult) -> list[dict]:
    """Closed trades for storage: times in epoch seconds, return in percent, the exit's reason by name."""
    t = result.time
    return [{
        "symbol": tr["symbol"], "side": "long", "size": tr["size"], "entry_time": int(t[tr["entry_bar"]]),
        "exit_time": int(t[tr["exit_bar"]]), "entry_price": tr["entry_price"], "exit_price": tr["exit_price"],
        "pnl": tr["pnl"], "return_pct": tr["return_pct"] * 100, "commission": tr["commission"],
        "exit_reason": EXIT_REASONS[tr["reason"]],
    } for tr in result.trades]
