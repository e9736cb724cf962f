"""Vega-Lite specs built with altair: prices, equity vs buy & hold, drawdown, trades, heatmaps.

Data is attached as named datasets and long series are thinned to at most
`conf.CHART_MAX_POINTS` points, keeping each bucket's low and high so that
peaks and drawdowns stay visible.
"""

from __future__ import annotations

import altair as alt
import numpy as np

from backtest import conf
from backtest.metrics import METRICS


def thin_indices(values: np.ndarray, max_points: int | None = None) -> np.ndarray:
    """Indices keeping the first, last, and each bucket's min and max."""
    n = len(values)
    max_points = max_points or conf.CHART_MAX_POINTS
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, max_points // 2)
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep = {0, n - 1}
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            segment = values[a:b]
            keep.add(a + int(np.argmin(segment)))
            keep.add(a + int(np.argmax(segment)))
    return np.array(sorted(keep))


def _spec(chart, **datasets: list[dict]) -> dict:
    """The Vega-Lite dict, with rows attached as named datasets after conversion
    (altair would otherwise walk and validate every row: seconds for a long series)."""
    spec = chart.to_dict(validate=False)
    spec["datasets"] = datasets
    return spec


def _iso_ms(seconds) -> list[int]:
    return [int(s) * 1000 for s in seconds]


def price_chart(*, time: np.ndarray, close: np.ndarray, symbol: str, interval: str) -> dict:
    idx = thin_indices(close)
    values = [{"t": t, "close": float(c)} for t, c in zip(_iso_ms(time[idx]), close[idx])]
    chart = alt.Chart(alt.Data(name="main")).mark_line(strokeWidth=1.2).encode(
        x=alt.X("t:T", title="Time (UTC)"),
        y=alt.Y("close:Q", title="Close", scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("t:T", format="%Y-%m-%d %H:%M"), alt.Tooltip("close:Q", format=",.4f")],
    ).properties(title=f"{symbol} · {interval} close", width="container", height=300)
    return _spec(chart, main=values)


def equity_chart(*, time: np.ndarray, equity: np.ndarray, close: np.ndarray, warmup: int, initial_cash: float) -> dict:
    buy_hold = initial_cash * close / close[warmup]
    idx = np.union1d(thin_indices(equity), thin_indices(buy_hold, conf.CHART_MAX_POINTS // 2))
    ts = _iso_ms(time[idx])
    values = [{"t": t, "series": "Strategy", "value": float(v)} for t, v in zip(ts, equity[idx])]
    values += [{"t": t, "series": "Buy & hold", "value": float(v)} for t, v in zip(ts, buy_hold[idx])]
    chart = alt.Chart(alt.Data(name="main")).mark_line(strokeWidth=1.3).encode(
        x=alt.X("t:T", title="Time (UTC)"),
        y=alt.Y("value:Q", title="Equity", scale=alt.Scale(zero=False)),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip("t:T", format="%Y-%m-%d %H:%M"), "series:N", alt.Tooltip("value:Q", format=",.2f")],
    ).properties(title="Equity vs buy & hold", width="container", height=280)
    return _spec(chart, main=values)


def drawdown_chart(*, time: np.ndarray, equity: np.ndarray) -> dict:
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = -(1 - equity / np.maximum.accumulate(equity)) * 100
    dd = np.nan_to_num(dd)
    idx = thin_indices(dd)
    values = [{"t": t, "drawdown": float(v)} for t, v in zip(_iso_ms(time[idx]), dd[idx])]
    chart = alt.Chart(alt.Data(name="main")).mark_area(color="#c62828", opacity=0.55, line=True).encode(
        x=alt.X("t:T", title="Time (UTC)"),
        y=alt.Y("drawdown:Q", title="Drawdown %"),
        tooltip=[alt.Tooltip("t:T", format="%Y-%m-%d %H:%M"), alt.Tooltip("drawdown:Q", format=".2f")],
    ).properties(title="Drawdown", width="container", height=180)
    return _spec(chart, main=values)


def trades_chart(*, time: np.ndarray, close: np.ndarray, trades: list[dict], max_trades: int = 400) -> dict:
    idx = thin_indices(close)
    prices = [{"t": t, "close": float(c)} for t, c in zip(_iso_ms(time[idx]), close[idx])]
    shown = trades[-max_trades:]
    marks = []
    for tr in shown:
        long = tr["side"] == "long"
        marks.append({"t": tr["entry_time"] * 1000, "price": tr["entry_price"], "what": "Buy" if long else "Sell short",
                      "pnl": tr["pnl"]})
        marks.append({"t": tr["exit_time"] * 1000, "price": tr["exit_price"], "what": "Sell" if long else "Cover",
                      "pnl": tr["pnl"]})
    base = alt.Chart(alt.Data(name="prices")).mark_line(strokeWidth=1, color="#607d8b").encode(
        x=alt.X("t:T", title="Time (UTC)"), y=alt.Y("close:Q", title="Price", scale=alt.Scale(zero=False)),
    )
    points = alt.Chart(alt.Data(name="marks")).mark_point(filled=True, size=45).encode(
        x="t:T", y="price:Q",
        shape=alt.Shape("what:N", title=None, scale=alt.Scale(
            domain=["Buy", "Sell", "Sell short", "Cover"],
            range=["triangle-up", "triangle-down", "triangle-down", "triangle-up"])),
        color=alt.Color("what:N", title=None, legend=alt.Legend(orient="top"), scale=alt.Scale(
            domain=["Buy", "Sell", "Sell short", "Cover"], range=["#2e7d32", "#c62828", "#6a1b9a", "#ef6c00"])),
        tooltip=[alt.Tooltip("t:T", format="%Y-%m-%d %H:%M"), "what:N", alt.Tooltip("price:Q", format=",.4f"),
                 alt.Tooltip("pnl:Q", format=",.2f", title="Trade P&L")],
    )
    title = "Trades on price" + (f" (last {max_trades})" if len(trades) > max_trades else "")
    return _spec((base + points).properties(title=title, width="container", height=300), prices=prices, marks=marks)


def heatmap_chart(*, cells: list[dict], x: str, y: str, metric: str) -> dict:
    """Cells carry the result that gave their value (`result_seq`): the page opens it on a click
    (static/backtest/charts.js), so the spec itself holds no link."""
    label = METRICS.get(metric, (metric,))[0]
    chart = alt.Chart(alt.Data(name="main")).mark_rect(cursor="pointer").encode(
        x=alt.X(f"{x}:O", title=x),
        y=alt.Y(f"{y}:O", title=y, sort="descending"),
        color=alt.Color(f"{metric}:Q", title=label, scale=alt.Scale(scheme="redyellowgreen")),
        tooltip=[alt.Tooltip(f"{metric}:Q", format=",.3f", title=label),
                 alt.Tooltip("result_params:N", title="Parameters"),
                 alt.Tooltip("result_instrument:N", title="Instrument"),
                 alt.Tooltip("result_seq:O", title="Result #")],
    ).properties(title=f"{label} by {x} × {y} (best over other parameters; click a cell to open it)",
                 width="container", height=320, usermeta={"opens": "sweep-result"})
    return _spec(chart, main=cells)


def portfolio_equity_chart(*, time: np.ndarray, equity: np.ndarray) -> dict:
    idx = thin_indices(equity)
    values = [{"t": t, "equity": float(v)} for t, v in zip(_iso_ms(time[idx]), equity[idx])]
    chart = alt.Chart(alt.Data(name="main")).mark_line(strokeWidth=1.3).encode(
        x=alt.X("t:T", title="Time (UTC)"),
        y=alt.Y("equity:Q", title="Equity", scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("t:T", format="%Y-%m-%d %H:%M"), alt.Tooltip("equity:Q", format=",.2f")],
    ).properties(title="Portfolio equity", width="container", height=260)
    return _spec(chart, main=values)


def allocation_chart(*, time: np.ndarray, symbols: list[str], weights: list[list[float]], cash: list[float]) -> dict:
    """Each instrument's share of equity over time (and the cash), stacked to 100 %."""
    ts = _iso_ms(time)
    values = [{"t": t, "holding": "Cash", "share": round(float(c) * 100, 4)} for t, c in zip(ts, cash)]
    for symbol, row in zip(symbols, weights):
        values += [{"t": t, "holding": symbol, "share": round(float(w) * 100, 4)} for t, w in zip(ts, row)]
    chart = alt.Chart(alt.Data(name="main")).mark_area(interpolate="step-after").encode(
        x=alt.X("t:T", title="Time (UTC)"),
        y=alt.Y("share:Q", title="Share of equity %", stack="zero"),
        color=alt.Color("holding:N", title=None, legend=alt.Legend(orient="top"), sort=["Cash", *symbols]),
        order=alt.Order("holding:N"),
        tooltip=[alt.Tooltip("t:T", format="%Y-%m-%d %H:%M"), "holding:N", alt.Tooltip("share:Q", format=".1f")],
    ).properties(title="Allocation over time", width="container", height=260)
    return _spec(chart, main=values)
