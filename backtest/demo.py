"""Demo data for `make run`: a few crypto and stock instruments with synthetic bars. Idempotent, ~10 s."""

from backtest import market_services
from backtest.models import PriceBar

DEMO = [
    # symbol, kind, exchange, name, start price, seed, {interval: bars}
    ("BTCUSDT", "crypto", "BINANCE", "Bitcoin / Tether", 42_000.0, 1, {"1h": 17_520, "4h": 4_380, "1d": 730}),
    ("ETHUSDT", "crypto", "BINANCE", "Ether / Tether", 2_300.0, 2, {"1h": 17_520, "1d": 730}),
    ("SOLUSDT", "crypto", "BINANCE", "Solana / Tether", 95.0, 3, {"1h": 8_760, "1d": 730}),
    ("AAPL", "stock", "NASDAQ", "Apple Inc.", 185.0, 4, {"1h": 3_500, "1d": 500}),
    ("MSFT", "stock", "NASDAQ", "Microsoft Corp.", 370.0, 5, {"1d": 500}),
    ("NOKIA", "stock", "OMXH", "Nokia Oyj", 3.4, 6, {"1d": 500}),
]


def demo_ensure(*, stdout) -> None:
    for symbol, kind, exchange, name, price, seed, intervals in DEMO:
        instrument = market_services.instrument_ensure(
            symbol=symbol, kind=kind, exchange=exchange, name=name, exchange_symbol=symbol if kind == "crypto" else ""
        )
        for interval, count in intervals.items():
            have = PriceBar.objects.filter(instrument=instrument, interval=interval).count()
            if have >= count:
                continue
            market_services.bars_generate(
                instrument=instrument, interval=interval, bars=count, start="2024-01-01", seed=seed * 10 + len(interval),
                start_price=price,
            )
            stdout.write(f"backtest demo: {symbol} {interval}: {count} synthetic bars")
