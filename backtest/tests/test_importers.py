"""CSV importers: generic and Binance (ms and µs), duplicates, invalid rows, gaps; the management command."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from backtest import market_services
from backtest.importers import ImportFormatError, epoch_unit, parse_ohlcv_csv
from backtest.models import Instrument, PriceBar

H = 3600 * 1000  # one hour in ms
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC in ms


def kline(ms, o=100.0, h=101.0, lo=99.0, c=100.5, v=10.0):
    return f"{ms},{o},{h},{lo},{c},{v},{ms + H - 1},1000.0,42,5.0,500.0,0"


def binance_csv(times, header=False):
    lines = ["open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
             "taker_buy_quote_volume,ignore"] if header else []
    return "\n".join(lines + [kline(t) for t in times]) + "\n"


def test_binance_ms_and_us_are_detected():
    frame, report = parse_ohlcv_csv(binance_csv([T0, T0 + H]))
    assert report.format == "binance" and report.time_unit == "ms"
    assert str(frame["open_time"].iloc[0]) == "2024-01-01 00:00:00+00:00"
    frame_us, report_us = parse_ohlcv_csv(binance_csv([T0 * 1000, (T0 + H) * 1000]))
    assert report_us.time_unit == "us"
    assert frame_us["open_time"].tolist() == frame["open_time"].tolist()
    frame_h, report_h = parse_ohlcv_csv(binance_csv([T0], header=True))
    assert report_h.format == "binance" and len(frame_h) == 1
    assert epoch_unit([1_704_067_200]) == "s"


def test_generic_csv_with_iso_times_duplicates_and_invalid_rows():
    text = (
        "Date,Open,High,Low,Close,Volume\n"
        "2024-01-02,10,11,9,10.5,100\n"
        "2024-01-01,9,10,8,9.5,100\n"
        "2024-01-02,10,12,9,11,100\n"  # duplicate time: the later row wins
        "2024-01-03,10,9,9,10,100\n"  # high below open: invalid
        "not a date,1,2,0.5,1,1\n"  # invalid
    )
    frame, report = parse_ohlcv_csv(text)
    assert report.format == "generic" and report.time_unit == "iso"
    assert report.duplicates == 1 and report.invalid == 2 and report.invalid_lines == [5, 6]
    assert frame["close"].tolist() == [9.5, 11.0]  # sorted by time


def test_generic_csv_with_epoch_seconds_and_no_volume():
    frame, report = parse_ohlcv_csv("timestamp,open,high,low,close\n1704067200,1,2,0.5,1.5\n")
    assert report.time_unit == "s" and frame["volume"].tolist() == [0.0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("a,b,c\n1,2,3\n", "header must name"),
        ("time,open,high,low\n1,2,3,4\n", "close"),
    ],
)
def test_bad_files_are_rejected_with_a_reason(text, message):
    with pytest.raises(ImportFormatError) as exc:
        parse_ohlcv_csv(text)
    assert message in str(exc.value)


@pytest.mark.django_db
def test_import_is_idempotent_and_reports_gaps():
    btc = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE")
    times = [T0 + i * H for i in range(10) if i not in (4, 5)]  # two missing hours
    report = market_services.bars_import_csv(instrument=btc, interval="1h", data=binance_csv(times))
    assert report["created"] == 8 and report["updated"] == 0
    assert report["gap_count"] == 1 and report["missing_bars"] == 2
    again = market_services.bars_import_csv(instrument=btc, interval="1h", data=binance_csv(times))
    assert again["created"] == 0 and again["updated"] == 8
    assert PriceBar.objects.count() == 8
    filled = market_services.bars_import_csv(instrument=btc, interval="1h", data=binance_csv([T0 + 4 * H, T0 + 5 * H]))
    assert filled["created"] == 2 and filled["gap_count"] == 0


@pytest.mark.django_db
def test_stock_weekends_are_not_gaps():
    aapl = market_services.instrument_create(symbol="AAPL", kind="stock", exchange="NASDAQ")
    # Fri 2024-01-05, Mon 2024-01-08 (weekend: no gap), Wed 2024-01-10 (Tuesday missing)
    text = "date,open,high,low,close\n2024-01-05,1,1,1,1\n2024-01-08,1,1,1,1\n2024-01-10,1,1,1,1\n"
    report = market_services.bars_import_csv(instrument=aapl, interval="1d", data=text)
    assert report["gap_count"] == 1 and report["missing_bars"] == 1


@pytest.mark.django_db
def test_import_bars_command(tmp_path):
    path = tmp_path / "BTCUSDT-1h-2024-01.csv"
    path.write_text(binance_csv([T0, T0 + H, T0 + H, T0 + 3 * H]))
    out = StringIO()
    call_command("import_bars", str(path), "--symbol", "BTCUSDT", "--interval", "1h", "--kind", "crypto",
                 "--exchange", "BINANCE", stdout=out)
    text = out.getvalue()
    assert "3 rows" in text and "1 duplicates" in text and "1 gaps (1 missing bars)" in text
    assert Instrument.objects.get(symbol="BTCUSDT").fractional is True
    with pytest.raises(CommandError):
        call_command("import_bars", str(path), "--symbol", "NOPE", "--interval", "1h", stdout=StringIO())
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    with pytest.raises(CommandError, match="header must name"):
        call_command("import_bars", str(bad), "--symbol", "BTCUSDT", "--interval", "1h", stdout=StringIO())


@pytest.mark.django_db
def test_generate_bars_command_makes_trading_day_series_for_stocks():
    call_command("generate_bars", "--symbol", "MSFT", "--kind", "stock", "--interval", "1d", "--bars", "30",
                 stdout=StringIO())
    days = {t.weekday() for t in PriceBar.objects.values_list("open_time", flat=True)}
    assert PriceBar.objects.count() == 30 and days <= {0, 1, 2, 3, 4}
    msft = Instrument.objects.get(symbol="MSFT")
    assert msft.fractional is False and msft.annual_days == 252
    call_command("generate_bars", "--symbol", "ETH", "--interval", "1h", "--bars", "48", stdout=StringIO())
    assert len({t.weekday() for t in PriceBar.objects.filter(instrument__symbol="ETH").values_list("open_time", flat=True)}) == 2
