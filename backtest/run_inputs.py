"""Checks and loads shared by backtest runs and sweeps: strategy, parameters, range, costs, bars."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from backtest import conf, selectors
from backtest.engine import Bars, Costs
from backtest.models import Instrument, Interval
from backtest.strategies import ParamError, Strategy, params_clean, strategy_get


def strategy_clean(key: str) -> Strategy:
    try:
        return strategy_get(key)
    except ParamError as exc:
        raise ValidationError({"strategy": exc.errors["strategy"]}) from None


def strategy_params_clean(strategy: Strategy, params: Any) -> dict:
    try:
        return params_clean(strategy, params)
    except ParamError as exc:
        raise ValidationError({"params": [f"{k}: {v}" for k, v in exc.errors.items()]}) from None


def request_range_clean(*, interval: str, start, end) -> None:
    if interval not in Interval.values:
        raise ValidationError({"interval": f"Choose one of {', '.join(Interval.values)}."})
    if start and end and start >= end:
        raise ValidationError({"end": "The end must be after the start."})


def costs_for(*, instrument: Instrument, commission_bps: float, slippage_bps: float, initial_cash: float) -> Costs:
    return Costs(
        initial_cash=float(initial_cash), commission_bps=float(commission_bps),
        slippage_bps=float(slippage_bps), fractional=instrument.fractional,
    )


def bars_load_checked(*, instrument: Instrument, interval: str, start, end, field: str = "start") -> Bars:
    bars = selectors.bars_load(instrument=instrument, interval=interval, start=start, end=end, limit=conf.MAX_BARS)
    if len(bars) > conf.MAX_BARS:
        raise ValidationError({field: f"The range holds more than {conf.MAX_BARS:,} bars; narrow it."})
    if len(bars) < 2:
        raise ValidationError(
            {field: f"{instrument.symbol} has fewer than two {interval} bars in this range; import or fetch data first."}
        )
    return bars
