"""Generate realistic synthetic bars (trend and volatility regimes) for demos and tests."""

from django.core.management.base import BaseCommand

from backtest import market_services
from backtest.models import InstrumentKind, Interval


class Command(BaseCommand):
    help = "Generate synthetic OHLCV bars: 24/7 for crypto, weekdays for stocks."

    def add_arguments(self, parser):
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--kind", choices=InstrumentKind.values, default="crypto")
        parser.add_argument("--exchange", default="")
        parser.add_argument("--interval", choices=Interval.values, default="1h")
        parser.add_argument("--bars", type=int, default=5000)
        parser.add_argument("--start", default="2023-01-01")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--price", type=float, default=100.0)
        parser.add_argument("--name", default="")

    def handle(self, *args, **opts):
        exchange = opts["exchange"] or ("BINANCE" if opts["kind"] == "crypto" else "NASDAQ")
        instrument = market_services.instrument_ensure(
            symbol=opts["symbol"], kind=opts["kind"], exchange=exchange, name=opts["name"]
        )
        report = market_services.bars_generate(
            instrument=instrument, interval=opts["interval"], bars=max(2, opts["bars"]), start=opts["start"],
            seed=opts["seed"], start_price=opts["price"],
        )
        self.stdout.write(
            f"{instrument.symbol} {opts['interval']}: {report['created']} new, {report['updated']} updated bars"
        )
