"""Uploading price bars: API and HTMX page, staff only, streamed to disk, imported as a job,
and a clear message (never a 500) for every bad input."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from backtest import conf, market_services
from backtest.models import BarImport, Instrument, PriceBar

H = 3600 * 1000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC in ms
URL = "/api/market/import/"

GENERIC = (
    "time,open,high,low,close,volume\n"
    "2024-01-01T00:00:00Z,10,11,9,10.5,100\n"
    "2024-01-01T01:00:00Z,10.5,12,10,11,100\n"
    "2024-01-01T01:00:00Z,10.5,12,10,11.5,100\n"  # duplicate: the later row wins
    "2024-01-01T04:00:00Z,11,12,10,11,100\n"  # a gap of 2 bars before it
    "2024-01-01T05:00:00Z,abc,12,10,11,100\n"  # invalid: not a number
)


def kline(ms, close=100.5):
    return f"{ms},100.0,101.0,99.0,{close},10.0,{ms + H - 1},1000.0,42,5.0,500.0,0"


def csv_file(text, name="bars.csv"):
    data = text.encode() if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")


@pytest.fixture
def staff(admin_user, auth_client):
    return auth_client(admin_user)


@pytest.fixture
def eth(db):
    return market_services.instrument_create(symbol="ETHUSDT", kind="crypto", exchange="BINANCE")


def post(client, text, *, symbol="ETHUSDT", interval="1h", name="bars.csv", **extra):
    return client.post(URL, {"file": csv_file(text, name), "symbol": symbol, "interval": interval, **extra},
                       format="multipart")


def imported(client, response, commits) -> dict:
    """The import once the request's transaction has committed (its job then runs inline)."""
    assert response.json()["status"] == "queued"  # queued on commit, not before
    commits.commit()
    return client.get(response.json()["url"]).json()


# --- API --------------------------------------------------------------------------------------


def test_staff_uploads_a_generic_csv_and_gets_the_report(sync_jobs, staff, eth):
    response = post(staff, GENERIC)
    assert response.status_code == 202, response.content
    data = imported(staff, response, sync_jobs)
    assert data["status"] == "succeeded" and data["symbol"] == "ETHUSDT" and data["filename"] == "bars.csv"
    report = data["report"]
    assert report["rows"] == 3 and report["created"] == 3 and report["updated"] == 0
    assert report["duplicates_in_file"] == 1 and report["invalid_rows"] == 1 and report["invalid_lines"] == [6]
    assert "not a number" in report["invalid_detail"]
    assert report["gap_count"] == 1 and report["missing_bars"] == 2
    assert "3 rows (3 new, 0 updated)" in data["message"] and "1 gaps (2 missing bars)" in data["message"]
    assert PriceBar.objects.filter(instrument=eth, interval="1h").count() == 3
    job = BarImport.objects.get(pk=data["id"])
    assert not job.file  # the stored upload is removed once imported
    assert staff.get(data["url"]).json()["report"]["rows"] == 3
    again = imported(staff, post(staff, GENERIC), sync_jobs)["report"]  # an upsert: the same file changes nothing
    assert again["created"] == 0 and again["updated"] == 3


@pytest.mark.parametrize("scale, unit", [(1, "ms"), (1000, "us")])
def test_binance_klines_in_ms_and_us(sync_jobs, staff, eth, scale, unit):
    text = "\n".join(kline((T0 + i * H) * scale) for i in range(24)) + "\n"
    data = imported(staff, post(staff, text), sync_jobs)
    assert data["status"] == "succeeded", data
    assert data["report"]["format"] == "binance" and data["report"]["time_unit"] == unit
    first = PriceBar.objects.filter(instrument=eth).order_by("open_time").first()
    assert first.open_time.isoformat() == "2024-01-01T00:00:00+00:00"


def test_a_new_instrument_needs_kind_and_exchange(sync_jobs, staff):
    bad = post(staff, GENERIC, symbol="NEWCOIN")
    assert bad.status_code == 400 and "kind and exchange" in bad.json()["symbol"][0]
    ok = post(staff, GENERIC, symbol="NEWCOIN", kind="crypto", exchange="BINANCE")
    assert ok.status_code == 202 and Instrument.objects.filter(symbol="NEWCOIN").exists()


def test_only_staff_may_import(user, auth_client, api_client, eth):
    response = post(auth_client(user), GENERIC)
    assert response.status_code == 403
    assert post(api_client, GENERIC).status_code in (401, 403)
    assert not BarImport.objects.exists() and not PriceBar.objects.exists()


ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 4


@pytest.mark.parametrize("text, field, message", [
    ("", "file", "empty"),
    ("time,open,high,low,close\n", "file", "no data rows"),
    ("when,open,high,low,close\n2024-01-01,1,2,0.5,1\n", "file", "must name a time column"),
    ("time,open,high,close\n2024-01-01,1,2,1\n", "file", "must name low"),
    ("time,open,high,low,close\n2024-01-01,1,2,0.5,1\n2024-01-02,1,2,0.5,1,9,9\n", "file", "same number of fields"),
    ("time,open,high,low,close\n2024-01-01,1;5,2,0.5,x\n2024-01-02,a,b,c,d\n", "file", "not a number"),
    ("time,open,high,low,close\nyesterday,1,2,0.5,1\nsoon,1,2,0.5,1\n", "file", "time could not be read"),
    ("date;open;high;low;close\n2024-01-01;1;2;0.5;1\n", "file", "semicolons"),
    (ZIP, "file", "Excel"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), "file", "binary file"),
    (b"\x1f\x8b\x08\x00" + bytes(100), "file", "gzip"),
    ("time,open,high,low,close\n" + "\n".join(kline(T0 + i * H) for i in range(3)), "file", "same number"),
])
def test_bad_files_are_refused_with_what_to_fix(staff, eth, text, field, message):
    response = post(staff, text)
    assert response.status_code == 400, response.content
    errors = response.json()
    text_out = " ".join(str(v) for v in errors.get(field, errors.values()))
    assert message.lower() in text_out.lower(), errors
    assert not BarImport.objects.exists()


def test_bad_form_fields(staff, eth):
    assert "interval" in staff.post(URL, {"file": csv_file(GENERIC), "symbol": "ETHUSDT", "interval": "5m"},
                                    format="multipart").json()
    missing = staff.post(URL, {"symbol": "ETHUSDT", "interval": "1h"}, format="multipart")
    assert missing.status_code == 400 and "field 'file'" in missing.json()["file"][0]
    as_json = staff.post(URL, {"symbol": "ETHUSDT", "interval": "1h"}, format="json")
    assert as_json.status_code == 415


def test_a_file_over_the_cap_is_refused_without_being_kept(staff, eth, monkeypatch):
    monkeypatch.setattr(conf, "IMPORT_MAX_BYTES", 10_000)
    big = "time,open,high,low,close\n" + "".join(f"{1_704_067_200 + i * 3600},1,2,0.5,1\n" for i in range(2000))
    response = post(staff, big)  # under the declared-length slack: the upload handler drops it at the cap
    assert response.status_code == 400
    assert "larger than 9.8 KiB; uploads are limited to 9.8 KiB (BACKTEST_IMPORT_MAX_BYTES)" in response.json()["file"][0]
    huge = big * 4  # declared length far over the cap: refused before the body is read
    response = post(staff, huge)
    assert response.status_code == 400 and "The file is 164.4 KiB" in response.json()["file"][0]
    assert "split it" in response.json()["file"][0].lower()
    assert not BarImport.objects.exists()


def test_uploads_stream_to_a_temporary_file(staff, eth, monkeypatch):
    seen = {}

    def capture(*, upload, **kwargs):
        seen["path"] = upload.temporary_file_path()  # not an in-memory upload, however small
        raise market_services.ValidationError({"file": "stop here"})

    monkeypatch.setattr(market_services, "bars_import_create", capture)
    assert post(staff, GENERIC).status_code == 400
    assert seen["path"]


def test_a_problem_found_past_the_first_64_kib_fails_the_job_with_a_message(sync_jobs, staff, eth):
    rows = [f"{1_704_067_200 + i * 3600},1,2,0.5,1" for i in range(4000)]
    text = "time,open,high,low,close\n" + "\n".join(rows) + "\n1800000000,1,2,0.5,1,7\n"
    assert len(text) > 64 * 1024
    data = imported(staff, post(staff, text), sync_jobs)
    assert data["status"] == "failed"
    assert "same number of fields" in data["error"] and "Traceback" not in data["error"]
    assert not PriceBar.objects.exists() and not BarImport.objects.get().file


# --- pages --------------------------------------------------------------------------------------


@pytest.fixture
def staff_browser(client, admin_user):
    client.force_login(admin_user)
    return client


def test_instrument_page_shows_the_upload_form_to_staff_only(staff_browser, client, user, eth):
    url = reverse("backtest:instrument_detail", args=["ETHUSDT"])
    page = staff_browser.get(url).content.decode()
    assert 'data-testid="bars-import"' in page and 'hx-encoding="multipart/form-data"' in page
    assert 'value="ETHUSDT"' in page
    client.force_login(user)
    assert 'data-testid="bars-import"' not in client.get(url).content.decode()
    assert client.get(reverse("backtest:bars_import")).status_code == 403
    response = client.post(reverse("backtest:bars_import"), {"file": csv_file(GENERIC), "symbol": "ETHUSDT",
                                                             "interval": "1h", "format": "auto"})
    assert response.status_code == 403 and not BarImport.objects.exists()


def test_htmx_upload_then_watch_the_import(sync_jobs, staff_browser, eth):
    url = reverse("backtest:bars_import")
    assert staff_browser.get(url).status_code == 200
    response = staff_browser.post(url, {"file": csv_file(GENERIC), "symbol": "ethusdt", "interval": "1h",
                                        "format": "auto"}, HTTP_HX_REQUEST="true")
    text = response.content.decode()
    assert response.status_code == 200 and 'id="bars-import"' in text and 'data-testid="import-status"' in text
    sync_jobs.commit()
    job = BarImport.objects.get()
    assert job.status == "succeeded" and job.instrument == eth
    detail = staff_browser.get(reverse("backtest:barimport_detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    body = detail.content.decode()
    assert 'data-testid="import-report"' in body and "hx-trigger" not in body  # finished: polling stops
    assert "3 new" in body and "1 (the last row" in body
    assert staff_browser.get(reverse("backtest:barimport_detail", args=[job.pk])).status_code == 200
    # without HTMX: redirect to the import's page
    plain = staff_browser.post(url, {"file": csv_file(GENERIC), "symbol": "ETHUSDT", "interval": "1h",
                                     "format": "auto"})
    assert plain.status_code == 302 and plain["Location"].endswith(f"/imports/{job.pk + 1}/")


@pytest.mark.parametrize("text, message", [
    ("", "The file is empty"),
    ("a,b\n1,2\n", "must name a time column"),
    (ZIP, "Excel"),
])
def test_page_shows_what_to_fix(staff_browser, eth, text, message):
    response = staff_browser.post(reverse("backtest:bars_import"), {
        "file": csv_file(text), "symbol": "ETHUSDT", "interval": "1h", "format": "auto"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert message in response.content.decode() and 'role="alert"' in response.content.decode()
    assert not BarImport.objects.exists()


def test_page_refuses_a_file_over_the_cap(staff_browser, eth, monkeypatch):
    monkeypatch.setattr(conf, "IMPORT_MAX_BYTES", 1000)
    big = "time,open,high,low,close\n" + "".join(f"{1_704_067_200 + i * 3600},1,2,0.5,1\n" for i in range(200))
    response = staff_browser.post(reverse("backtest:bars_import"), {
        "file": csv_file(big), "symbol": "ETHUSDT", "interval": "1h", "format": "auto"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "BACKTEST_IMPORT_MAX_BYTES" in response.content.decode()
    assert "This field is required" not in response.content.decode()


def test_page_unknown_instrument_needs_kind_and_exchange(sync_jobs, staff_browser):
    url = reverse("backtest:bars_import")
    response = staff_browser.post(url, {"file": csv_file(GENERIC), "symbol": "NEWCOIN", "interval": "1h",
                                        "format": "auto"}, HTTP_HX_REQUEST="true")
    assert "choose a kind and an exchange" in response.content.decode()
    response = staff_browser.post(url, {"file": csv_file(GENERIC), "symbol": "NEWCOIN", "interval": "1h",
                                        "format": "auto", "kind": "crypto", "exchange": "BINANCE"},
                                  HTTP_HX_REQUEST="true")
    sync_jobs.commit()
    assert BarImport.objects.get().status == "succeeded"


def test_service_refuses_non_staff_whatever_the_route(user, admin_user, eth):
    """The staff rule is the service's: the view and the API permission only answer early."""
    for who in (user, None):
        with pytest.raises(market_services.PermissionDenied, match="Only staff"):
            market_services.bars_import_create(owner=who, instrument=eth, interval="1h", upload=csv_file(GENERIC))
    admin_user.is_active = False
    with pytest.raises(market_services.PermissionDenied):
        market_services.bars_import_create(owner=admin_user, instrument=eth, interval="1h", upload=csv_file(GENERIC))
    assert BarImport.objects.count() == 0
