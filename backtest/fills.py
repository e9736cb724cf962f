"""How a run trades: entries (state or cross), sizing, stops, targets and trailing stops.

Rules of the fills (shown beside every result, see `engine.SEMANTICS`):
- the position wanted during a bar is the decision of the previous bar's close;
  `entry="state"` holds it whenever the signal says so; `entry="cross"` takes a
  position only where the signal changes (the first position at the first change);
- a change fills at that bar's open; a reversal closes and reopens at that open;
- a stop, target or trailing stop is resting from the entry bar on: it is hit when
  the bar's low (high for a short) crosses it and fills at its level; a bar that
  opens beyond it fills at the open; when the stop and the target both lie inside
  one bar, the stop fills first;
- after a stop, target or trailing exit the position is re-entered only on the next
  change of signal, never on the very next bar;
- an entry that cash cannot pay for is retried on the following bars while the signal
  holds (`state`), or dropped (`cross`), as backtesting.py drops an order it cannot fill.

Only the bars where the wanted position changes are walked in Python; the bars
in between are searched with numpy, so a run costs O(bars) numpy work plus
O(trades) Python work.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields

import numpy as np

_ALMOST_ONE = 1 - sys.float_info.epsilon

ENTRY_MODES = ("state", "cross")
#: Why a trade closed; trades store the index into this tuple.
EXIT_REASONS = ("signal", "stop", "target", "trailing", "end")
SIGNAL, STOP, TARGET, TRAILING, END = range(5)

STOP_UNITS = ("pct", "atr")
SIZINGS = ("equity", "units")


@dataclass(frozen=True)
class Rules:
    entry: str = "state"
    stop_loss: float = 0.0  # 0 = none; percent of the entry price, or a multiple of ATR
    take_profit: float = 0.0
    trailing_stop: float = 0.0
    stop_unit: str = "pct"
    atr_period: int = 14
    sizing: str = "equity"  # "equity": `size` is the fraction of equity; "units": a fixed number of units
    size: float = 1.0
    finalize_trades: bool = False

    @classmethod
    def from_params(cls, params: dict) -> Rules:
        return cls(**{f.name: params[f.name] for f in fields(cls) if f.name in params})

    @property
    def has_exits(self) -> bool:
        return bool(self.stop_loss or self.take_profit or self.trailing_stop)

    @property
    def uses_atr(self) -> bool:
        return self.has_exits and self.stop_unit == "atr"


def held_positions(target: np.ndarray, warmup: int, entry: str = "state") -> np.ndarray:
    """The position wanted during each bar: the decision of the previous bar's close."""
    n = len(target)
    raw = np.asarray(target, dtype=float).copy()
    raw[np.isnan(raw)] = 0.0
    first = min(n, warmup + 1)  # first decision on the bar after warm-up
    if entry == "cross":
        decided = np.full(n, np.nan)
        decided[:first] = 0.0
        if first < n:
            before = np.r_[0.0, raw[:-1]]  # flat before the first bar
            fresh = np.flatnonzero(raw[first:] != before[first:]) + first
            decided[fresh] = raw[fresh]
        known = np.where(np.isnan(decided), 0, np.arange(n))
        decided = np.nan_to_num(decided[np.maximum.accumulate(known)])
    else:
        decided = raw
        decided[:first] = 0.0
    held = np.zeros(n)
    held[1:] = decided[:-1]
    return held


@dataclass
class Fills:
    trades: dict  # column name (TRADE_COLUMNS) -> array, one value per closed trade
    events: tuple  # arrays of bar, cash, size, entry price after each fill, in bar order
    open_position: dict | None


def fill_trades(
    *, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, held: np.ndarray,
    cash: float, rate: float, slip: float, fractional: bool, rules: Rules, atr: np.ndarray | None = None,
) -> Fills:
    n = len(close)
    changes = np.flatnonzero(np.diff(held, prepend=0.0) != 0).tolist()
    wants = held[changes].tolist()
    opens = open_[changes].tolist()  # plain floats: numpy scalars are several times slower in the loop
    fraction = rules.size if rules.sizing == "equity" else 1.0
    fixed_units = None
    if rules.sizing == "units":
        fixed_units = float(rules.size) if fractional else float(int(rules.size))
    exits = _Exits(open_, high, low, close, rules, atr) if rules.has_exits else None
    # Per closed trade only what the loop must know; the rest is derived with numpy afterwards.
    opened_at, exit_bars, exit_prices, reasons = [], [], [], []
    add_opened, add_exit_bar, add_exit_price, add_reason = (
        opened_at.append, exit_bars.append, exit_prices.append, reasons.append)
    ev_bar, ev_cash, ev_size, ev_entry = [], [], [], []
    add_bar, add_cash, add_units, add_entry = ev_bar.append, ev_cash.append, ev_size.append, ev_entry.append
    size = entry_price = entry_commission = 0.0
    entry_bar = -1

    def close_position(bar: int, price: float, reason: int) -> None:
        nonlocal cash, size
        exit_price = price * (1 - slip) if size > 0 else price * (1 + slip)
        cash += size * (exit_price - entry_price) - abs(size) * exit_price * rate
        add_opened(len(ev_bar) - 1), add_exit_bar(bar), add_exit_price(exit_price), add_reason(reason)
        size = 0.0
        add_bar(bar), add_cash(cash), add_units(0.0), add_entry(entry_price)

    def units_for(price: float, want: float) -> float:
        fill = price * (1 + want * slip)
        per_unit = fill + (_ALMOST_ONE * fill * rate) / _ALMOST_ONE
        if fixed_units is not None:
            return fixed_units if fixed_units > 0 and fixed_units * per_unit <= cash else 0.0
        budget = cash if fraction == 1 else cash * fraction
        return budget * _ALMOST_ONE / per_unit if fractional else float(int(budget * _ALMOST_ONE // per_unit))

    def open_position(bar: int, price: float, want: float, units: float) -> None:
        nonlocal cash, size, entry_price, entry_commission, entry_bar
        fill = price * (1 + want * slip)
        entry_commission = units * fill * rate
        cash -= entry_commission
        size, entry_price, entry_bar = want * units, fill, bar
        add_bar(bar), add_cash(cash), add_units(size), add_entry(fill)

    def first_affordable(start: int, stop: int, want: float) -> int:
        """The first bar in [start, stop) whose open cash can pay one unit (or the fixed units) at."""
        if start >= stop or cash <= 0:
            return -1
        fill = open_[start:stop] * (1 + want * slip)
        per_unit = fill + (_ALMOST_ONE * fill * rate) / _ALMOST_ONE
        if fixed_units is not None:
            ok = fixed_units * per_unit <= cash
        else:
            budget = cash if fraction == 1 else cash * fraction
            ok = (budget * _ALMOST_ONE // per_unit) >= 1 if not fractional else per_unit > 0
        hit = np.flatnonzero(ok)
        return start + int(hit[0]) if len(hit) else -1

    retry = rules.entry == "state"
    for idx, j in enumerate(changes):
        if size:
            if exits is not None:
                hit = exits.first_exit(entry_bar, j, size, entry_price)
                if hit:
                    close_position(*hit)
            if size:
                close_position(j, opens[idx], SIGNAL)
        want = wants[idx]
        if not want or cash <= 0:
            continue
        price = opens[idx]
        units = units_for(price, want)
        if not units > 0:
            if not retry:
                continue
            j = first_affordable(j + 1, changes[idx + 1] if idx + 1 < len(changes) else n, want)
            if j < 0:
                continue
            price = float(open_[j])
            units = units_for(price, want)
        open_position(j, price, want, units)
    if size and exits is not None:
        hit = exits.first_exit(entry_bar, n, size, entry_price)
        if hit:
            close_position(*hit)
    if size and rules.finalize_trades:
        close_position(n - 1, float(close[n - 1]), END)
    position = None
    if size:
        position = {"size": size, "entry_bar": entry_bar, "entry_price": entry_price, "commission": entry_commission}
    events = (np.asarray(ev_bar, dtype=np.int64), *(np.asarray(c, dtype=float) for c in (ev_cash, ev_size, ev_entry)))
    return Fills(_trade_columns(events, opened_at, exit_bars, exit_prices, reasons, rate), events, position)


def _trade_columns(events, opened_at, exit_bars, exit_prices, reasons, rate) -> dict:
    """Closed trades from the entry events and exits: the same arithmetic as the fills, per column."""
    ev_bar, _, ev_size, ev_entry = events
    opened = np.asarray(opened_at, dtype=np.int64)
    signed, entry_price = ev_size[opened], ev_entry[opened]
    exit_price = np.asarray(exit_prices, dtype=float)
    size = np.abs(signed)
    side = np.where(signed > 0, 1.0, -1.0)
    commission = size * entry_price * rate + size * exit_price * rate
    return {
        "side": side, "size": size, "entry_bar": ev_bar[opened], "exit_bar": np.asarray(exit_bars, dtype=np.int64),
        "entry_price": entry_price, "exit_price": exit_price,
        "pnl": signed * (exit_price - entry_price) - commission,
        "return_pct": side * (exit_price / entry_price - 1) - commission / (size * entry_price),
        "commission": commission, "reason": np.asarray(reasons, dtype=np.int8),
    }


class _Exits:
    """Finds the first stop, target or trailing-stop fill of an open position."""

    def __init__(self, open_, high, low, close, rules: Rules, atr):
        self.open, self.high, self.low, self.close, self.rules = open_, high, low, close, rules
        self.atr = atr if rules.stop_unit == "atr" else None

    def _distance(self, amount: float, price: float, bar: int) -> float:
        if self.atr is None:
            return price * amount / 100
        return amount * float(self.atr[bar - 1]) if bar > 0 else float("nan")

    def first_exit(self, entry: int, stop: int, size: float, price: float) -> tuple[int, float, int] | None:
        """(bar, fill price before slippage, reason) of the first exit in bars [entry, stop), if any."""
        if entry >= stop:
            return None
        r, s = self.rules, (1.0 if size > 0 else -1.0)
        # Work on side-adjusted prices (s * price) so one set of comparisons serves longs and shorts.
        adverse = s * (self.low[entry:stop] if s > 0 else self.high[entry:stop])
        favorable = s * (self.high[entry:stop] if s > 0 else self.low[entry:stop])
        opens = s * self.open[entry:stop]
        count = stop - entry
        fixed = trail = target = None
        if r.stop_loss:
            fixed = np.full(count, s * price - self._distance(r.stop_loss, price, entry))
        if r.trailing_stop:
            # The level during a bar trails the best close before it (and the entry price).
            closes = s * self.close[entry:stop - 1]
            if self.atr is None:
                refs = closes * (1 - r.trailing_stop / 100) if s > 0 else closes * (1 + r.trailing_stop / 100)
            else:
                refs = closes - r.trailing_stop * self.atr[entry:stop - 1]
            trail = np.maximum.accumulate(np.r_[s * price - self._distance(r.trailing_stop, price, entry), refs])
        if r.take_profit:
            target = s * price + self._distance(r.take_profit, price, entry)
        level = fixed if trail is None else (trail if fixed is None else np.maximum(fixed, trail))
        stop_hit = adverse <= level if level is not None else np.zeros(count, dtype=bool)
        target_hit = favorable >= target if target is not None else np.zeros(count, dtype=bool)
        hits = np.flatnonzero(stop_hit | target_hit)
        if not len(hits):
            return None
        k = int(hits[0])
        bar = entry + k
        if level is not None:
            kind = TRAILING if trail is not None and (fixed is None or trail[k] > fixed[k]) else STOP
            if opens[k] <= level[k]:  # opened through the stop
                return bar, float(s * opens[k]), kind
        if target is not None and opens[k] >= target:  # opened through the target
            return bar, float(s * opens[k]), TARGET
        if stop_hit[k]:  # the stop first when both lie inside the bar
            return bar, float(s * level[k]), kind
        return bar, float(s * target), TARGET
