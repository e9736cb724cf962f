"""Bars upload end to end: multipart POST to the real ASGI server, import run by the real worker."""

import time

import pytest
import requests

from backtest import market_services
from backtest.models import PriceBar

pytestmark = pytest.mark.e2e

H = 3600 * 1000
T0 = 1_704_067_200_000


def test_staff_upload_is_imported_by_the_worker(live_platform, admin_user, user, auth_client, transactional_db):
    eth = market_services.instrument_create(symbol="ETHUSDT", kind="crypto", exchange="BINANCE")
    rows = [f"{(T0 + i * H) * 1000},100,101,99,100.5,10,{(T0 + i * H + H - 1) * 1000},1000,42,5,500,0"
            for i in range(3000) if i != 100]  # µs open times, one bar missing
    body = ("\n".join(rows) + "\n").encode()
    url = f"{live_platform.url}/api/market/import/"
    denied = requests.post(url, headers={"Authorization": f"Token {auth_client(user).token}"},
                           files={"file": ("k.csv", body)}, data={"symbol": "ETHUSDT", "interval": "1h"}, timeout=30)
    assert denied.status_code == 403
    headers = {"Authorization": f"Token {auth_client(admin_user).token}"}
    created = requests.post(url, headers=headers, files={"file": ("klines.csv", body, "text/csv")},
                            data={"symbol": "ETHUSDT", "interval": "1h"}, timeout=30)
    assert created.status_code == 202, created.text
    detail = created.json()
    deadline = time.monotonic() + 60
    while detail["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.3)
        detail = requests.get(live_platform.url + detail["url"], headers=headers, timeout=10).json()
    assert detail["status"] == "succeeded", (detail, live_platform.output())
    report = detail["report"]
    assert report["format"] == "binance" and report["time_unit"] == "us"
    assert report["rows"] == report["created"] == 2999 and report["gap_count"] == 1 and report["missing_bars"] == 1
    assert PriceBar.objects.filter(instrument=eth, interval="1h").count() == 2999
