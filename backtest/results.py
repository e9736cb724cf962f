"""Stored backtest results: content-addressed by everything a result depends on."""

from __future__ import annotations

import hashlib
import json

from django.db import IntegrityError, transaction

from backtest import selectors
from backtest.engine import ENGINE_VERSION, Bars, Costs, EngineResult
from backtest.models import BacktestResult, Instrument


def result_key_compute(*, instrument: Instrument, interval: str, bars_hash: str, strategy: str, params: dict, costs: Costs) -> str:
    """Everything a result depends on: the data (by hash), the strategy, parameters, costs, engine."""
    payload = {
        "instrument": instrument.pk, "interval": interval, "bars": bars_hash, "strategy": strategy,
        "params": params, "cash": costs.initial_cash, "commission_bps": costs.commission_bps,
        "slippage_bps": costs.slippage_bps, "fractional": costs.fractional,
        "annual_days": instrument.annual_days, "engine": ENGINE_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _equity_payload(bars: Bars, result: EngineResult) -> dict:
    return {"t": bars.time.tolist(), "equity": [round(float(x), 6) for x in result.equity]}


def result_store(
    *, key: str, instrument: Instrument, interval: str, strategy: str, params: dict, costs: Costs,
    bars: Bars, bars_hash: str, engine_result: EngineResult, compute_ms: float,
) -> BacktestResult:
    result = BacktestResult(
        key=key, instrument=instrument, interval=interval, strategy=strategy, params=params,
        commission_bps=costs.commission_bps, slippage_bps=costs.slippage_bps, initial_cash=costs.initial_cash,
        fractional=costs.fractional, data_start=selectors.to_datetime(bars.time[0]),
        data_end=selectors.to_datetime(bars.time[-1]), bar_count=len(bars), bars_hash=bars_hash,
        engine_version=ENGINE_VERSION, metrics=engine_result.metrics, trades=engine_result.trade_dicts(bars),
        open_trade=engine_result.open_trade, equity=_equity_payload(bars, engine_result),
        warmup=engine_result.warmup, compute_ms=compute_ms,
    )
    result.full_clean()
    try:
        with transaction.atomic():
            result.save()
    except IntegrityError:  # computed concurrently by another worker: same key, same content
        return BacktestResult.objects.get(key=key)
    return result
