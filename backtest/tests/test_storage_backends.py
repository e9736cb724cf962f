"""Bar imports on both stores (local disk and a real S3-compatible server): the upload is stored, parsed
from the worker's local copy, then removed from the store; an upload the store lost fails clearly."""

import pytest
from django.core.files.storage import default_storage

from backtest import market_services
from backtest.models import BarImport, PriceBar
from backtest.tests.test_import_upload import GENERIC, post
from core import filecache
from core.storage import stored_walk


@pytest.fixture
def staff(admin_user, auth_client):
    return auth_client(admin_user)


@pytest.fixture
def eth(db):
    return market_services.instrument_create(symbol="ETHUSDT", kind="crypto", exchange="BINANCE")


def test_a_bar_import_reads_the_stored_upload_and_removes_it(any_store, sync_jobs, staff, eth):
    response = post(staff, GENERIC)
    assert response.status_code == 202, response.content
    job = BarImport.objects.get(pk=response.json()["id"])
    assert [name for name, _ in stored_walk()] == [job.file.name]
    if any_store is not None:
        assert any_store.keys() == [job.file.name]
    sync_jobs.commit()
    data = staff.get(response.json()["url"]).json()
    assert data["status"] == "succeeded", data
    assert data["report"]["rows"] == 3
    assert PriceBar.objects.filter(instrument=eth, interval="1h").count() == 3
    assert list(stored_walk()) == [] and filecache.cache_entries() == []  # nothing left in the store or the cache


def test_a_bar_import_whose_upload_the_store_lost_fails_clearly(any_store, sync_jobs, staff, eth):
    response = post(staff, GENERIC)
    default_storage.delete(BarImport.objects.get(pk=response.json()["id"]).file.name)
    sync_jobs.commit()
    data = staff.get(response.json()["url"]).json()
    assert data["status"] == "failed"
    assert data["error"] == market_services.IMPORT_FILE_MISSING
    assert PriceBar.objects.filter(instrument=eth).count() == 0
