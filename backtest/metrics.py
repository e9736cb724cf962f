"""Result metrics, defined exactly as backtesting.py 0.6 defines them.

Formulas (equity E, closed trades with P&L `pl` and net returns `r`):
- return = E[-1] / E[0] - 1; buy & hold = close[-1] / close[warm-up bar] - 1
- daily returns d: last equity of each UTC day, percentage change; g = geometric mean of d
- annualized return = (1 + g)^A - 1, A = 52 for weekly bars, 12 for monthly bars, else 365 (24/7
  markets) or 252 (stocks); with weekly or monthly bars d are the bar-to-bar returns
- annualized volatility = sqrt((var(d, ddof=1) + (1 + g)^2)^A - (1 + g)^(2A))
- CAGR = (E[-1] / E[0])^(1 / years) - 1, years = duration in days / 365.25
- Sharpe = annualized return / annualized volatility (risk-free rate 0)
- Sortino = annualized return / (sqrt(mean(min(d, 0)^2)) * sqrt(A))
- Calmar = annualized return / max drawdown
- drawdown = 1 - E / running max(E); an episode runs from a bar at a peak to the
  next one (or the end); max / average of the episode peaks and durations
- alpha = return - beta * buy & hold, beta = cov(log returns of E, of close) / var(close log returns)
- win rate = share of trades with pl > 0; best / worst / average trade = max / min /
  geometric mean of r; profit factor = sum(r > 0) / |sum(r < 0)|; expectancy = mean(r)
- SQN = sqrt(#trades) * mean(pl) / std(pl, ddof=1); Kelly = W - (1 - W) / (mean win / mean loss)
- exposure = share of bars from a trade's entry bar to its exit bar (inclusive), a trade still open at
  the end counted to the last bar; commissions = those of closed trades plus the open trade's entry
Durations are in days, rounded up to the bar interval's unit. Undefined values are None.
"""

from __future__ import annotations

import math

import numpy as np

#: Every metric, in display order: key -> (label, unit, higher_is_better)
METRICS: dict[str, tuple[str, str, bool]] = {
    "return_pct": ("Return", "%", True),
    "buy_hold_return_pct": ("Buy & hold return", "%", True),
    "return_ann_pct": ("Return (ann.)", "%", True),
    "volatility_ann_pct": ("Volatility (ann.)", "%", False),
    "cagr_pct": ("CAGR", "%", True),
    "sharpe": ("Sharpe ratio", "", True),
    "sortino": ("Sortino ratio", "", True),
    "calmar": ("Calmar ratio", "", True),
    "alpha_pct": ("Alpha", "%", True),
    "beta": ("Beta", "", False),
    "max_drawdown_pct": ("Max. drawdown", "%", True),
    "avg_drawdown_pct": ("Avg. drawdown", "%", True),
    "max_drawdown_days": ("Max. drawdown duration", "days", False),
    "avg_drawdown_days": ("Avg. drawdown duration", "days", False),
    "trades": ("# Trades", "", True),
    "win_rate_pct": ("Win rate", "%", True),
    "best_trade_pct": ("Best trade", "%", True),
    "worst_trade_pct": ("Worst trade", "%", True),
    "avg_trade_pct": ("Avg. trade", "%", True),
    "max_trade_days": ("Max. trade duration", "days", False),
    "avg_trade_days": ("Avg. trade duration", "days", False),
    "profit_factor": ("Profit factor", "", True),
    "expectancy_pct": ("Expectancy", "%", True),
    "sqn": ("SQN", "", True),
    "kelly": ("Kelly criterion", "", True),
    "exposure_pct": ("Exposure time", "%", False),
    "equity_final": ("Equity final", "$", True),
    "equity_peak": ("Equity peak", "$", True),
    "commissions": ("Commissions", "$", False),
    "duration_days": ("Duration", "days", False),
}


def geometric_mean(returns: np.ndarray) -> float:
    growth = np.nan_to_num(np.asarray(returns, dtype=float)) + 1
    if np.any(growth <= 0):
        return 0.0
    if not len(growth):
        return math.nan
    return float(np.exp(np.log(growth).sum() / len(growth)) - 1)


def annual_periods(period_seconds: float, annual_days: int) -> int:
    """Return periods per year for bars this far apart (as backtesting.py reads the bars' spacing)."""
    days = period_seconds / 86400
    if 6.5 <= days <= 7.5:
        return 52
    if 27.5 <= days <= 31.5:
        return 12
    if 360 <= days <= 367:
        return 1
    return annual_days


def _resolution(period: float) -> float:
    """The unit a pandas Timedelta of `period` seconds reports as its resolution."""
    for unit in (86400, 3600, 60, 1):
        if period and period % unit == 0:
            return float(unit)
    return 1.0


def _ceil_days(seconds: float, unit: float) -> float:
    if seconds is None or not np.isfinite(seconds):
        return math.nan
    return math.ceil(seconds / unit - 1e-9) * unit / 86400


def drawdown_episodes(dd: np.ndarray, time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(durations in seconds, peak drawdowns) of each drawdown episode."""
    zeros = np.flatnonzero(dd == 0)
    if not len(zeros) or zeros[-1] != len(dd) - 1:
        zeros = np.r_[zeros, len(dd) - 1]
    prev, cur = zeros[:-1], zeros[1:]
    keep = cur > prev + 1
    if not keep.any():
        return np.array([]), np.array([])
    seg_max = np.maximum.reduceat(dd, zeros[:-1]) if len(zeros) > 1 else np.array([])
    peaks = np.maximum(seg_max, dd[cur])[keep]
    durations = (time[cur] - time[prev])[keep].astype(float)
    return durations, peaks


def _clean(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _beta(eq_log: np.ndarray, mkt_log: np.ndarray) -> float:
    """cov(eq, mkt) / var(mkt), as np.cov computes them (ddof 1)."""
    n = len(eq_log)
    if n < 2:
        return math.nan
    xm = eq_log - eq_log.mean()
    ym = mkt_log - mkt_log.mean()
    # einsum, not np.dot: BLAS threads make a dot of this size several times slower on a busy host.
    return float(np.einsum("i,i->", xm, ym) / np.einsum("i,i->", ym, ym))


def compute_metrics(
    *, time: np.ndarray, equity: np.ndarray, close: np.ndarray, trades, warmup: int, annual_days: int,
    day_ends: np.ndarray | None = None, market_log: np.ndarray | None = None, open_trade: dict | None = None,
) -> dict:
    n = len(equity)
    tail = time[-100:]
    period = float(np.median(np.diff(tail))) if len(tail) > 1 else 86400.0
    unit = _resolution(period)

    with np.errstate(divide="ignore", invalid="ignore"):
        dd = 1 - equity / np.maximum.accumulate(equity)
    dd_durations, dd_peaks = drawdown_episodes(dd, time)

    pl, ret = trades.pnl, trades.return_pct
    n_trades = len(pl)
    entries, exits = trades.entry_bar, trades.exit_bar
    open_commission = 0.0
    if open_trade:
        entries, exits = np.r_[entries, open_trade["entry_bar"]], np.r_[exits, n - 1]
        open_commission = float(open_trade.get("commission", 0.0))
    if len(entries):
        starts = np.bincount(entries, minlength=n + 1)
        stops = np.bincount(exits + 1, minlength=n + 1)
        exposure = float((np.cumsum(starts[:n] - stops[:n]) > 0).mean() * 100)
    else:
        exposure = 0.0

    duration_s = float(time[-1] - time[0])
    out: dict = {
        "start": int(time[0]),
        "end": int(time[-1]),
        "duration_days": duration_s / 86400,
        "exposure_pct": exposure,
        "equity_final": float(equity[-1]),
        "equity_peak": float(equity.max()),
        "commissions": float(trades.commission.sum()) + open_commission,
        "return_pct": float((equity[-1] - equity[0]) / equity[0] * 100),
    }
    base = close[warmup]
    out["buy_hold_return_pct"] = float((close[-1] - base) / base * 100)

    # Last equity of each UTC day, then day-over-day returns.
    if day_ends is None:
        day = time // 86400
        day_ends = np.r_[np.flatnonzero(np.diff(day) != 0), n - 1]
    daily = equity[day_ends]
    with np.errstate(divide="ignore", invalid="ignore"):
        day_returns = daily[1:] / daily[:-1] - 1
    day_returns = day_returns[~np.isnan(day_returns)]
    g = geometric_mean(day_returns) if len(day_returns) else 0.0
    a = annual_periods(period, annual_days)
    annualized = (1 + g) ** a - 1
    var = float(np.var(day_returns, ddof=1)) if len(day_returns) > 1 else math.nan
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        vol = math.sqrt(v) * 100 if (v := (var + (1 + g) ** 2) ** a - (1 + g) ** (2 * a)) >= 0 else math.nan
        out["return_ann_pct"] = annualized * 100
        out["volatility_ann_pct"] = vol
        years = duration_s / 86400 / 365.25
        out["cagr_pct"] = ((equity[-1] / equity[0]) ** (1 / years) - 1) * 100 if years else math.nan
        out["sharpe"] = out["return_ann_pct"] / (vol or math.nan)
        downside = np.sqrt(np.mean(np.minimum(day_returns, 0) ** 2)) if len(day_returns) else math.nan
        out["sortino"] = float(np.float64(annualized) / (downside * np.sqrt(a)))
        max_dd = float(np.nan_to_num(np.nanmax(dd))) if n else 0.0
        out["calmar"] = annualized / (max_dd or math.nan)

        eq_log = np.log(equity[1:] / equity[:-1])
        mkt_log = market_log if market_log is not None else np.log(close[1:] / close[:-1])
        beta = _beta(eq_log, mkt_log)
    out["alpha_pct"] = out["return_pct"] - beta * out["buy_hold_return_pct"]
    out["beta"] = beta
    out["max_drawdown_pct"] = -max_dd * 100
    out["avg_drawdown_pct"] = -float(dd_peaks.mean()) * 100 if len(dd_peaks) else math.nan
    out["max_drawdown_days"] = _ceil_days(dd_durations.max(), unit) if len(dd_durations) else math.nan
    out["avg_drawdown_days"] = _ceil_days(dd_durations.mean(), unit) if len(dd_durations) else math.nan

    out["trades"] = n_trades
    win_rate = float((pl > 0).mean()) if n_trades else math.nan
    out["win_rate_pct"] = win_rate * 100
    out["best_trade_pct"] = float(ret.max()) * 100 if n_trades else math.nan
    out["worst_trade_pct"] = float(ret.min()) * 100 if n_trades else math.nan
    out["avg_trade_pct"] = geometric_mean(ret) * 100 if n_trades else math.nan
    if n_trades:
        held = (time[trades.exit_bar] - time[trades.entry_bar]).astype(float)
        out["max_trade_days"] = _ceil_days(held.max(), unit)
        out["avg_trade_days"] = _ceil_days(held.mean(), unit)
        losses = abs(ret[ret < 0].sum())
        out["profit_factor"] = float(ret[ret > 0].sum() / losses) if losses else math.nan
        out["expectancy_pct"] = float(ret.mean()) * 100
        sd = float(np.std(pl, ddof=1)) if n_trades > 1 else math.nan
        out["sqn"] = math.sqrt(n_trades) * float(pl.mean()) / sd if sd else math.nan
        wins, lose = pl[pl > 0], pl[pl < 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (wins.mean() if len(wins) else math.nan) / (-lose.mean() if len(lose) else math.nan)
        out["kelly"] = win_rate - (1 - win_rate) / ratio
    else:
        for key in ("max_trade_days", "avg_trade_days", "profit_factor", "expectancy_pct", "sqn", "kelly"):
            out[key] = math.nan
    return {key: (value if key in ("start", "end", "trades") else _clean(value)) for key, value in out.items()}
