"""Import OHLCV bars from CSV files (generic with a header, or Binance kline dumps)."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from backtest import market_services, selectors
from backtest.importers import ImportFormatError
from backtest.models import InstrumentKind, Interval


class Command(BaseCommand):
    help = "Import OHLCV CSV files into price bars (idempotent upsert); reports duplicates, invalid rows and gaps."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="CSV files")
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--interval", required=True, choices=Interval.values)
        parser.add_argument("--format", default="auto", choices=["auto", "generic", "binance"])
        parser.add_argument("--kind", choices=InstrumentKind.values, help="Create the instrument if missing")
        parser.add_argument("--exchange", default="", help="With --kind: BINANCE, NASDAQ, OMXH, …")
        parser.add_argument("--exchange-symbol", default="")
        parser.add_argument("--name", default="")

    def handle(self, *args, **opts):
        instrument = selectors.instrument_get(symbol=opts["symbol"])
        if instrument is None:
            if not opts["kind"] or not opts["exchange"]:
                raise CommandError(f"Unknown instrument {opts['symbol']}; pass --kind and --exchange to create it.")
            instrument = market_services.instrument_create(
                symbol=opts["symbol"], kind=opts["kind"], exchange=opts["exchange"],
                exchange_symbol=opts["exchange_symbol"], name=opts["name"],
            )
            self.stdout.write(f"created instrument {instrument.symbol}")
        for name in opts["files"]:
            path = Path(name)
            if not path.is_file():
                raise CommandError(f"{path} is not a file")
            try:
                report = market_services.bars_import_csv(
                    instrument=instrument, interval=opts["interval"], data=path.read_bytes(), fmt=opts["format"]
                )
            except (ImportFormatError, ValidationError) as exc:
                raise CommandError(f"{path}: {exc}") from None
            self.stdout.write(
                f"{path.name}: format {report['format']} (time unit {report['time_unit']}), {report['rows']} rows, "
                f"{report['created']} new, {report['updated']} updated, {report['duplicates_in_file']} duplicates "
                f"in file, {report['invalid_rows']} invalid rows"
                + (f" (lines {report['invalid_lines']})" if report["invalid_lines"] else "")
                + f"; stored series has {report['gap_count']} gaps ({report['missing_bars']} missing bars)"
            )
            for gap in report["gaps"][:10]:
                self.stdout.write(f"  gap after {gap['after']} before {gap['before']}: {gap['missing']} missing")
