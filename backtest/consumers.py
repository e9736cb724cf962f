"""The backtest jobs' live streams (core.streams.JobStream): `/ws/backtest/runs/<id>/`,
`/ws/backtest/sweeps/<id>/` (one `result` event per finished backtest), `/ws/backtest/imports/<id>/` and
`/ws/backtest/portfolios/<id>/`."""

from backtest import selectors
from core.streams import JobStream


class RunStream(JobStream):
    app, kind, model_label = "backtest", "runs", "backtest.backtestrun"

    def load(self, user, pk):
        return selectors.run_get_for_viewer(user=user, pk=pk)


class SweepStream(JobStream):
    app, kind, model_label = "backtest", "sweeps", "backtest.sweep"

    def load(self, user, pk):
        return selectors.sweep_get_for_viewer(user=user, pk=pk)


class BarImportStream(JobStream):
    app, kind, model_label = "backtest", "imports", "backtest.barimport"

    def load(self, user, pk):
        return selectors.bar_import_get_for_viewer(user=user, pk=pk)


class PortfolioStream(JobStream):
    app, kind, model_label = "backtest", "portfolios", "backtest.portfolio"

    def load(self, user, pk):
        return selectors.portfolio_get_for_viewer(user=user, pk=pk)


#: The stream of each backtest job kind, for the API's `stream` field.
STREAMS = {stream.model_label: stream for stream in (RunStream, SweepStream, BarImportStream, PortfolioStream)}
