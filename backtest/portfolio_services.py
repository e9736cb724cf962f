"""Writes of portfolio runs: several instruments, one shared cash balance (rules in backtest.portfolio_engine)."""

from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.db import transaction

from backtest import charts, conf, selectors
from backtest.engine import Costs
from backtest.models import Instrument, InstrumentKind, Portfolio
from backtest.portfolio_engine import (
    MODES, REBALANCE_PERIODS, WEIGHTINGS, PortfolioRules, run_portfolio, trade_dicts,
)
from backtest.run_inputs import bars_load_checked, request_range_clean, strategy_clean, strategy_params_clean
from backtest.strategies import strategy_get
from core.jobkit import JobReporter
from core.services import job_enqueue, job_succeed

#: Points kept of the allocation over time (one row per instrument each): enough for a chart.
ALLOCATION_POINTS = 600

#: Execution parameters a portfolio decides itself (sizing) or does not model (shorts in a shared cash pool).
NOT_IN_PORTFOLIOS = {
    "allow_short": "Portfolios trade long only: a short's margin in the shared cash is not modelled.",
    "sizing": "The portfolio sizes each entry from its weight and the free cash.",
    "size": "The portfolio sizes each entry from its weight and the free cash.",
    "finalize_trades": "Positions open at the end stay open (listed apart) in portfolios.",
}


def portfolio_params_clean(*, mode: str, strategy: str, params: dict | None) -> tuple[str, dict]:
    """The strategy and cleaned parameters of a portfolio run: signals need one, rebalancing takes none."""
    if mode == "rebalance":
        if strategy or params:
            raise ValidationError({"strategy": "A rebalanced allocation takes no strategy or parameters: leave them "
                                               "empty."})
        return "", {}
    if not strategy:
        raise ValidationError({"strategy": "Per-instrument signals need a strategy."})
    strat = strategy_clean(strategy)
    clean = strategy_params_clean(strat, params)
    refused = [f"{name}: {why}" for name, why in NOT_IN_PORTFOLIOS.items()
               if name in clean and clean[name] not in (False,)]
    if refused:
        raise ValidationError({"params": refused})
    return strat.key, clean


def portfolio_create(
    *,
    owner,
    instruments: list[Instrument],
    interval: str,
    mode: str = "signals",
    weighting: str = "equal",
    rebalance: str = "monthly",
    vol_window: int = 30,
    strategy: str = "",
    params: dict | None = None,
    start=None,
    end=None,
    commission_bps: float = 10.0,
    slippage_bps: float = 0.0,
    initial_cash: float = 10_000.0,
) -> Portfolio:
    """Check a portfolio request and queue it as a job."""
    errors = {}
    if mode not in MODES:
        errors["mode"] = f"Choose one of {', '.join(MODES)}."
    if weighting not in WEIGHTINGS:
        errors["weighting"] = f"Choose one of {', '.join(WEIGHTINGS)}."
    if rebalance not in REBALANCE_PERIODS:
        errors["rebalance"] = f"Choose one of {', '.join(REBALANCE_PERIODS)}."
    if errors:
        raise ValidationError(errors)
    request_range_clean(interval=interval, start=start, end=end)
    instruments = list(dict.fromkeys(instruments))
    if len(instruments) < 2:
        raise ValidationError({"instruments": "Choose at least two instruments."})
    if len(instruments) > conf.PORTFOLIO_MAX_INSTRUMENTS:
        raise ValidationError({"instruments": f"At most {conf.PORTFOLIO_MAX_INSTRUMENTS} instruments per portfolio."})
    strategy, clean = portfolio_params_clean(mode=mode, strategy=strategy, params=params)
    portfolio = Portfolio(
        owner=owner, interval=interval, start=start, end=end, mode=mode, weighting=weighting, rebalance=rebalance,
        vol_window=vol_window, strategy=strategy, params=clean, commission_bps=commission_bps,
        slippage_bps=slippage_bps, initial_cash=initial_cash,
    )
    portfolio.full_clean(exclude=["owner"])
    total = 0
    for instrument in instruments:
        count = selectors.bars_queryset(instrument=instrument, interval=interval, start=start, end=end).count()
        if count < 2:
            raise ValidationError({"instruments": f"{instrument.symbol} has fewer than two {interval} bars in this "
                                                  "range; import or fetch data first."})
        total += count
    if total > conf.MAX_BARS:
        raise ValidationError({"start": f"The instruments hold {total:,} bars in this range, more than "
                                        f"{conf.MAX_BARS:,}; narrow it."})
    with transaction.atomic():
        portfolio.save()
        portfolio.instruments.set(instruments)
        job_enqueue(job=portfolio)
    return portfolio


def portfolio_execute(portfolio: Portfolio) -> None:
    """Job body: load every instrument's bars, run the portfolio, store its result."""
    reporter = JobReporter(portfolio)
    instruments = list(portfolio.instruments.order_by("symbol"))
    bars = []
    for number, instrument in enumerate(instruments):
        reporter.raise_if_stopped(fresh=True)  # one read per instrument: loading one takes longer than a read
        reporter.progress(fraction=0.7 * number / len(instruments), message=f"Loading {instrument.symbol} bars")
        bars.append(bars_load_checked(instrument=instrument, interval=portfolio.interval, start=portfolio.start,
                                      end=portfolio.end, field="instruments"))
    reporter.raise_if_stopped(fresh=True)
    reporter.progress(fraction=0.75, message=f"Running the portfolio over {sum(map(len, bars)):,} bars", force=True)
    symbols = [i.symbol for i in instruments]
    t0 = time.perf_counter()
    result = run_portfolio(
        bars=bars, symbols=symbols, fractional=[i.fractional for i in instruments],
        rules=PortfolioRules(mode=portfolio.mode, weighting=portfolio.weighting, vol_window=portfolio.vol_window,
                             rebalance=portfolio.rebalance),
        costs=Costs(initial_cash=portfolio.initial_cash, commission_bps=portfolio.commission_bps,
                    slippage_bps=portfolio.slippage_bps),
        annual_days=365 if any(i.kind == InstrumentKind.CRYPTO for i in instruments) else 252,
        strategy=strategy_get(portfolio.strategy) if portfolio.mode == "signals" else None, params=portfolio.params,
    )
    elapsed = (time.perf_counter() - t0) * 1000
    reporter.raise_if_stopped(fresh=True)
    weights = result.allocation()
    keep = charts.thin_indices(result.equity, ALLOCATION_POINTS)
    m = result.metrics
    job_succeed(
        job=portfolio,
        message=f"{len(instruments)} instruments, {result.orders:,} orders, return {m['return_pct']:.2f}% "
                f"in {elapsed:.0f} ms",
        bar_count=len(result.time), metrics=m, contributions=result.contributions,
        equity={"t": result.time.tolist(), "equity": [round(float(x), 6) for x in result.equity]},
        allocation={"t": result.time[keep].tolist(), "symbols": symbols,
                    "weights": [[round(float(x), 6) for x in row[keep]] for row in weights],
                    "cash": [round(float(x), 6) for x in (result.cash / result.equity)[keep]]},
        trades=trade_dicts(result), open_positions=result.open_positions, orders=result.orders, compute_ms=elapsed,
    )
