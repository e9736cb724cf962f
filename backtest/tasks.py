"""Thin django-q2 entry points; the work is in services."""

from backtest import market_services, services
from backtest.models import BacktestRun, Sweep
from core.jobkit import job_execute


def run_execute(pk: int) -> None:
    job_execute(model=BacktestRun, pk=pk, body=services.backtest_run_execute)


def sweep_execute(pk: int) -> None:
    job_execute(model=Sweep, pk=pk, body=services.sweep_execute)


def fetch_active() -> list[dict]:
    """Scheduled (hourly): bring active Binance instruments up to date."""
    return market_services.bars_fetch_active()


def import_execute(pk: int) -> None:
    from backtest.models import BarImport

    job_execute(model=BarImport, pk=pk, body=market_services.bars_import_execute)


def walkforward_execute(pk: int) -> None:
    from backtest import walkforward_services
    from backtest.models import WalkForward

    job_execute(model=WalkForward, pk=pk, body=walkforward_services.walkforward_execute)
