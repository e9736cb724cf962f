"""Thin django-q2 entry points; the work is in services."""

from backtest import market_services, services, sweep_chunks
from backtest.models import BacktestRun, Sweep
from core.jobkit import job_execute
from core.schedules import previous_release_task


def backtest_run_execute(pk: int) -> None:
    job_execute(model=BacktestRun, pk=pk, body=services.backtest_run_execute)


def sweep_execute(pk: int) -> None:
    job_execute(model=Sweep, pk=pk, body=services.sweep_execute)


def sweep_chunk_execute(sweep_pk: int, instrument_pk: int, first: int, end: int) -> int:
    """One chunk of a sweep split across workers (backtest.sweep_chunks)."""
    return sweep_chunks.sweep_chunk_execute(sweep_pk=sweep_pk, instrument_pk=instrument_pk, first=first, end=end)


def bars_fetch_active() -> list[dict]:
    """Scheduled (hourly): bring active Binance instruments up to date."""
    return market_services.bars_fetch_active()


def bars_import_execute(pk: int) -> None:
    from backtest.models import BarImport

    job_execute(model=BarImport, pk=pk, body=market_services.bars_import_execute)


def portfolio_execute(pk: int) -> None:
    from backtest import portfolio_services
    from backtest.models import Portfolio

    job_execute(model=Portfolio, pk=pk, body=portfolio_services.portfolio_execute)


def __getattr__(name: str):
    # Tasks queued by the previous release under their old names (core.schedules.PREVIOUS_RELEASE_TASKS).
    return previous_release_task(__name__, name)
