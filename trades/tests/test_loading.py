"""`load_trades` (CSV, CSV.gz, Parquet; idempotent; bad rows counted) and `generate_trades`."""

import gzip
import io

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from trades.models import Exchange, LoadedFile, Trade

HEADER = ("ticker,conditions,correction,exchange,id,participant_timestamp,price,sequence_number,"
          "sip_timestamp,size,tape,trf_id,trf_timestamp")
ROWS = [
    "AAPL,12,0,12,1,1700000000000000100,190.5,1,1700000000000000200,100,3,,",
    "AAPL,,0,10,2,1700000000000000900,190.75,2,1700000000000001000,50,3,,",
    "MSFT,,0,11,3,1700000000000000500,370.1,3,1700000000000000600,10,3,,",
    "AAPL,,0,12,4,1700000000000000400,190.25,4,1700000000000000500,5,3,,",
    "BAD ROW,,0,12,5,notatime,1.0,5,1,5,3,,",
    "MSFT,,0,11,6,1700000000000000700,-3,6,1,5,3,,",
    "MSFT,,0,99,7,1700000000000000800,371.0,7,1,7,3,,",
]


def write_csv(tmp_path, name="day.csv", rows=ROWS, gz=False):
    text = "\n".join([HEADER, *rows]) + "\n"
    path = tmp_path / name
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return str(path)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["csv", "gz", "parquet"])
def test_load_formats_deltas_and_bad_rows(tmp_path, kind):
    if kind == "parquet":
        frame = pd.read_csv(io.StringIO("\n".join([HEADER, *ROWS])), dtype=str, keep_default_na=False)
        path = str(tmp_path / "day.parquet")
        frame.to_parquet(path)
    else:
        path = write_csv(tmp_path, name="day.csv.gz" if kind == "gz" else "day.csv", gz=kind == "gz")
    out = io.StringIO()
    call_command("load_trades", path, stdout=out)
    assert "5 rows loaded, 2 bad rows" in out.getvalue()
    aapl = list(Trade.objects.filter(ticker="AAPL").order_by("participant_timestamp").values_list("del_t", "del_p"))
    assert aapl == [(None, None), (300, -0.25), (500, 0.5)]
    msft = list(Trade.objects.filter(ticker="MSFT").order_by("participant_timestamp").values_list("del_t", "del_p"))
    assert msft == [(None, None), (300, pytest.approx(0.9))]
    assert Exchange.objects.filter(id=99).exists()  # unknown ids get a placeholder
    again = io.StringIO()
    call_command("load_trades", path, stdout=again)  # idempotent
    assert "already loaded" in again.getvalue()
    assert Trade.objects.count() == 5 and LoadedFile.objects.count() == 1


@pytest.mark.django_db
def test_second_file_chains_deltas(tmp_path):
    call_command("load_trades", write_csv(tmp_path), stdout=io.StringIO())
    later = ["AAPL,,0,12,9,1700000000000001900,191.0,9,1,1,3,,"]
    call_command("load_trades", write_csv(tmp_path, name="next.csv", rows=later), stdout=io.StringIO())
    last = Trade.objects.filter(ticker="AAPL").order_by("-participant_timestamp").first()
    assert (last.del_t, last.del_p) == (1000, 0.25)


@pytest.mark.django_db
def test_unreadable_files_are_reported(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("load_trades", str(bad), str(tmp_path / "missing.csv"), stdout=io.StringIO(), stderr=err)
    assert "missing column" in err.getvalue() and "no such file" in err.getvalue()


@pytest.mark.django_db
def test_generate_trades_is_realistic():
    call_command("generate_trades", "--tickers", "3", "--days", "2", "--rows", "5000", stdout=io.StringIO())
    frame = pd.DataFrame.from_records(Trade.objects.values())
    assert len(frame) == 5000
    assert frame["ticker"].nunique() == 3 and frame["exchange_id"].nunique() > 5
    assert (frame["price"] > 0).all() and (frame["size"] > 0).all()
    for _ticker, group in frame.sort_values("participant_timestamp").groupby("ticker"):
        assert group["del_t"].isna().sum() == 1
        assert (group["del_t"].dropna() >= 0).all()
        # a random walk: consecutive prices stay close
        assert (group["price"].pct_change().abs().dropna() < 0.05).all()
