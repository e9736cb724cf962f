"""The analyzer on both stores (local disk and a real S3-compatible server): the upload is stored, the
DuckDB file is built locally then stored, and a question is answered from a host's cached copy, also on
a host that never saw the upload."""

import pytest

from analyzer import services
from analyzer.models import AnalysisSession, Processing
from analyzer.tests.conftest import ask, create_session, process, upload_of
from core import filecache
from core.storage import stored_walk


def _names() -> list[str]:
    return sorted(name for name, _ in stored_walk())


def _rows(messages) -> list[dict]:
    result = next(m for m in messages if m.kind == "query_result")
    assert not result.data["is_error"], result.data
    return result.data["result"]


@pytest.mark.django_db
def test_an_upload_is_processed_and_answered_from_the_store(any_store, user, settings, tmp_path, commits):
    session = create_session(user)
    commits.commit()
    assert session.row_count == 10
    assert _names() == [session.data_name]  # the original is dropped once loaded (ANALYZER_KEEP_ORIGINAL off)
    if any_store is not None:
        assert any_store.keys() == [session.data_name]
    rows = _rows(ask(session, user, "total qty by symbol"))
    assert {r["symbol"]: r["sum_qty"] for r in rows} == {"AAPL": 29, "MSFT": 17, "GOOG": 12, "TSLA": 35}

    # Another host: an empty cache; the answer fetches the stored database into it.
    settings.PLATFORM_FILE_CACHE_DIR = str(tmp_path / "other-host-cache")
    assert filecache.cache_entries() == []
    rows = _rows(ask(session, user, "total qty by symbol"))
    assert {r["symbol"]: r["sum_qty"] for r in rows}["TSLA"] == 35
    assert len(filecache.cache_entries()) == 1


@pytest.mark.django_db
def test_processing_on_a_host_without_the_upload_reads_it_from_the_store(any_store, user, settings, tmp_path):
    settings.ANALYZER_KEEP_ORIGINAL = True
    session = services.session_create_from_upload(owner=user, upload=upload_of("t.csv", "a,b\n1,2\n3,4\n"),
                                                   auto_analyze=False)
    settings.PLATFORM_FILE_CACHE_DIR = str(tmp_path / "worker-host-cache")
    session = process(session)
    assert session.row_count == 2
    assert _names() == sorted([session.original_name, session.data_name])


@pytest.mark.django_db
def test_processing_of_an_upload_gone_from_the_store_fails_clearly(any_store, user):
    session = services.session_create_from_upload(owner=user, upload=upload_of("t.csv", "a,b\n1,2\n"),
                                                   auto_analyze=False)
    from django.core.files.storage import default_storage

    default_storage.delete(session.original_name)
    session = process(session)
    job = Processing.objects.get(session=session)
    assert job.status == "failed"
    assert job.error == "The uploaded file is no longer in storage; upload it again."
    assert _names() == []


@pytest.mark.django_db
def test_deleting_a_session_deletes_its_stored_files(any_store, user, commits):
    session = create_session(user)
    commits.commit()
    assert _names() == [session.data_name]
    services.session_delete(session=session)
    commits.commit()
    assert _names() == [] and not AnalysisSession.objects.filter(pk=session.pk).exists()
    if any_store is not None:
        assert any_store.keys() == []
