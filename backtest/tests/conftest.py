import pytest

from backtest import market_services


@pytest.fixture
def btc(db):
    instrument = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE", name="Bitcoin")
    market_services.bars_generate(instrument=instrument, interval="1h", bars=2000, start="2024-01-01", seed=1,
                                  start_price=40_000)
    return instrument


@pytest.fixture
def aapl(db):
    instrument = market_services.instrument_create(symbol="AAPL", kind="stock", exchange="NASDAQ")
    market_services.bars_generate(instrument=instrument, interval="1d", bars=300, start="2023-01-02", seed=2,
                                  start_price=150)
    return instrument
