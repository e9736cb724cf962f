"""The Binance REST fetcher against a fake klines server on 127.0.0.1 (pagination, 429, resume)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from backtest import conf, market_services
from backtest.fetcher import BinanceClient, FetchError
from backtest.models import PriceBar

H = 3600 * 1000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
AVAILABLE = 2500  # bars the fake exchange has


class FakeBinance:
    def __init__(self, *, throttle_first: int = 0, retry_after: str = "3"):
        self.requests: list[dict] = []
        self.throttle_left = throttle_first
        self.retry_after = retry_after
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                fake.requests.append(q)
                if url.path != "/api/v3/klines":
                    self.send_response(404)
                    self.end_headers()
                    return
                if fake.throttle_left > 0:
                    fake.throttle_left -= 1
                    self.send_response(429)
                    self.send_header("Retry-After", fake.retry_after)
                    self.end_headers()
                    self.wfile.write(b'{"code":-1003,"msg":"Too many requests"}')
                    return
                start = int(q.get("startTime", T0))
                limit = min(int(q.get("limit", 500)), 1000)
                first = max(0, -(-(start - T0) // H))
                rows = []
                for i in range(first, min(first + limit, AVAILABLE)):
                    t = T0 + i * H
                    price = 100 + i * 0.1
                    rows.append([t, f"{price:.2f}", f"{price + 1:.2f}", f"{price - 1:.2f}", f"{price + 0.05:.2f}",
                                 "12.5", t + H - 1, "1250.0", 10, "6.0", "600.0", "0"])
                body = json.dumps(rows).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-MBX-USED-WEIGHT-1M", "2")
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_binance():
    servers = []

    def make(**kw):
        server = FakeBinance(**kw)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def btc(db):
    return market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE")


def client(url, waits):
    return BinanceClient(base_url=url, sleep=waits.append, pause=0)


@pytest.mark.django_db
def test_paginates_and_resumes_from_the_last_stored_bar(fake_binance, btc, monkeypatch):
    monkeypatch.setattr(conf, "FETCH_START", "2024-01-01")
    fake = fake_binance()
    waits = []
    report = market_services.bars_fetch(instrument=btc, interval="1h", client=client(fake.url, waits))
    # each page starts 1 ms after the last bar received
    assert [int(r["startTime"]) for r in fake.requests] == [T0, T0 + 999 * H + 1, T0 + 1999 * H + 1]
    assert all(r["limit"] == "1000" and r["symbol"] == "BTCUSDT" and r["interval"] == "1h" for r in fake.requests)
    assert report["created"] == AVAILABLE and report["pages"] == 3 and report["gap_count"] == 0
    assert PriceBar.objects.count() == AVAILABLE
    # Next run starts at the last stored bar (re-fetching it, it may have been incomplete)
    fake.requests.clear()
    again = market_services.bars_fetch(instrument=btc, interval="1h", client=client(fake.url, waits))
    assert [int(r["startTime"]) for r in fake.requests] == [T0 + (AVAILABLE - 1) * H]
    assert again["created"] == 0 and again["updated"] == 1
    assert waits == []


@pytest.mark.django_db
def test_429_waits_for_retry_after_and_retries(fake_binance, btc):
    fake = fake_binance(throttle_first=2, retry_after="3")
    waits = []
    report = market_services.bars_fetch(instrument=btc, interval="1h", client=client(fake.url, waits))
    assert waits[:2] == [3.0, 3.0]
    assert report["retries"] == 2 and report["created"] == AVAILABLE


def test_gives_up_after_repeated_429(fake_binance):
    fake = fake_binance(throttle_first=100, retry_after="1000")
    waits = []
    c = BinanceClient(base_url=fake.url, sleep=waits.append, pause=0, retries=2, max_retry_after=30)
    with pytest.raises(FetchError, match="429"):
        c.klines_page(symbol="BTCUSDT", interval="1h", start_ms=T0)
    assert waits == [30.0, 30.0]  # Retry-After is bounded


def test_unreachable_server_is_a_fetch_error():
    c = BinanceClient(base_url="http://127.0.0.1:9", sleep=lambda s: None, pause=0, retries=1, timeout=1)
    with pytest.raises(FetchError):
        c.klines_page(symbol="BTCUSDT", interval="1h", start_ms=T0)


@pytest.mark.django_db
def test_scheduled_fetch_is_off_by_default_and_covers_active_crypto(fake_binance, btc, monkeypatch):
    from backtest import tasks
    from django_q.models import Schedule

    assert Schedule.objects.filter(func="backtest.tasks.bars_fetch_active").exists()
    assert tasks.bars_fetch_active() == []  # disabled: no network in the embedded mode
    fake = fake_binance()
    monkeypatch.setattr(conf, "FETCH_ENABLED", True)
    monkeypatch.setattr(conf, "BINANCE_URL", fake.url)
    monkeypatch.setattr(conf, "FETCH_PAUSE", 0)
    market_services.instrument_create(symbol="OLDUSDT", kind="crypto", exchange="BINANCE", active=False)
    reports = tasks.bars_fetch_active()
    assert [r["symbol"] for r in reports] == ["BTCUSDT"] and reports[0]["created"] == AVAILABLE


@pytest.mark.django_db
def test_fetch_bars_command(fake_binance, btc, monkeypatch):
    from io import StringIO

    from django.core.management import call_command

    fake = fake_binance(throttle_first=1, retry_after="0")
    monkeypatch.setattr(conf, "BINANCE_URL", fake.url)
    monkeypatch.setattr(conf, "FETCH_PAUSE", 0)
    out = StringIO()
    call_command("fetch_bars", "--symbol", "BTCUSDT", "--max-calls", "2", stdout=out)
    assert "BTCUSDT 1h: 2 pages, 2000 new, 0 updated, 1 retries" in out.getvalue()
    err = StringIO()
    monkeypatch.setattr(conf, "BINANCE_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(conf, "FETCH_RETRIES", 0)
    call_command("fetch_bars", stdout=StringIO(), stderr=err)
    assert "BTCUSDT: Binance request failed" in err.getvalue()
