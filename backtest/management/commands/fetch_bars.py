"""Fetch klines from Binance now, for one instrument or every active one (the scheduled job's work)."""

from django.core.management.base import BaseCommand, CommandError

from backtest import market_services, selectors
from backtest.fetcher import FetchError
from backtest.models import Interval


class Command(BaseCommand):
    help = "Fetch Binance klines, resuming at the last stored bar (ignores BACKTEST_FETCH_ENABLED)."

    def add_arguments(self, parser):
        parser.add_argument("--symbol", help="One instrument (default: every active BINANCE crypto instrument)")
        parser.add_argument("--interval", choices=Interval.values, default="1h")
        parser.add_argument("--max-calls", type=int, default=None, help="REST calls at most (1000 bars each)")

    def handle(self, *args, **opts):
        if opts["symbol"]:
            instrument = selectors.instrument_get(symbol=opts["symbol"])
            if instrument is None:
                raise CommandError(f"Unknown instrument {opts['symbol']}.")
            targets = [instrument]
        else:
            targets = list(selectors.instrument_list(kind="crypto", active=True).filter(exchange="BINANCE"))
        for instrument in targets:
            try:
                report = market_services.bars_fetch(
                    instrument=instrument, interval=opts["interval"], max_calls=opts["max_calls"]
                )
            except FetchError as exc:
                self.stderr.write(f"{instrument.symbol}: {exc}")
                continue
            self.stdout.write(
                f"{instrument.symbol} {opts['interval']}: {report['pages']} pages, {report['created']} new, "
                f"{report['updated']} updated, {report['retries']} retries, waited {report['waited_seconds']:.1f} s"
            )
