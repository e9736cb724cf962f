"""Exports on both stores (local disk and a real S3-compatible server): written, downloaded with a ranged
resume, never a 200 for a file the store lacks, never expired while the store holds the file, and
removed from the store by retention."""

import hashlib
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from core.models import JobStatus
from trades import conf, services, tasks
from trades.models import Export
from trades.params import ExportParams

pytestmark = pytest.mark.django_db(transaction=True)


def _export(user, **fields) -> Export:
    export = services.export_request(user=user, params=ExportParams(**fields)).export
    tasks.export_run(export.pk)
    export.refresh_from_db()
    assert export.status == JobStatus.SUCCEEDED, export.error
    return export


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def _stored_names(any_store) -> list[str]:
    if any_store is not None:
        return any_store.keys()
    from core.storage import stored_walk

    return sorted(name for name, _ in stored_walk())


def test_an_export_is_written_to_the_store_and_resumed_by_range(any_store, trades_data, user, auth_client):
    export = _export(user, operations=("PRICE*SIZE",), sortby="time_asc")
    assert _stored_names(any_store) == [export.file_name]
    client = auth_client(user)
    url = f"/api/trades/exports/{export.pk}/download/"
    full = client.get(url)
    assert full.status_code == 200 and full["ETag"] == f'"{export.sha256}"'
    assert int(full["Content-Length"]) == export.size_bytes
    data = _body(full)
    cut = data[: len(data) // 3]
    rest = client.get(url, HTTP_RANGE=f"bytes={len(cut)}-", HTTP_IF_RANGE=full["ETag"])
    assert rest.status_code == 206
    assert rest["Content-Range"] == f"bytes {len(cut)}-{len(data) - 1}/{len(data)}"
    assert hashlib.sha256(cut + _body(rest)).hexdigest() == export.sha256 == hashlib.sha256(data).hexdigest()
    middle = client.get(url, HTTP_RANGE="bytes=100-199")
    assert middle.status_code == 206 and _body(middle) == data[100:200]
    assert client.get(url, HTTP_IF_NONE_MATCH=full["ETag"]).status_code == 304


def test_a_download_of_a_file_the_store_lacks_never_answers_200(any_store, trades_data, user, auth_client, client):
    export = _export(user)
    default_storage.delete(export.file_name)  # gone from the store (another host's disk, a manual delete)
    api = auth_client(user).get(f"/api/trades/exports/{export.pk}/download/")
    assert api.status_code == 410 and not api.streaming
    assert api.json() == {"detail": "This export's file is no longer in storage; run the export again."}
    assert auth_client(user).get(f"/api/trades/exports/{export.pk}/download/",
                                 HTTP_RANGE="bytes=10-").status_code == 410
    client.force_login(user)
    page = client.get(f"/trades/exports/{export.pk}/download/")
    assert page.status_code == 410 and not page.streaming
    assert "no longer in storage" in page.content.decode()
    assert str(default_storage.location) not in page.content.decode()  # no server path shown
    export.refresh_from_db()
    assert export.expired_at is None  # a download is not the place to decide that


def test_a_file_that_vanishes_after_the_lookup_is_still_a_clear_answer(any_store, trades_data, user, auth_client,
                                                                        monkeypatch):
    from core import downloads

    export = _export(user)
    real_open = downloads.stored_open_range

    def deleted_meanwhile(name, start, length):
        default_storage.delete(name)
        return real_open(name, start, length)

    monkeypatch.setattr(downloads, "stored_open_range", deleted_meanwhile)
    response = auth_client(user).get(f"/api/trades/exports/{export.pk}/download/")
    assert response.status_code == 410 and not response.streaming


def test_a_re_request_does_not_expire_an_export_whose_file_is_in_the_store(any_store, trades_data, user):
    export = _export(user)
    again = services.export_request(user=user, params=ExportParams())
    assert again.outcome == "existing" and again.export.pk == export.pk
    export.refresh_from_db()
    assert export.expired_at is None and _stored_names(any_store) == [export.file_name]


def test_a_store_that_cannot_answer_does_not_expire_an_export(any_store, trades_data, user, monkeypatch):
    export = _export(user)

    def unreachable(name, storage=None):
        raise ConnectionError("store unreachable")

    monkeypatch.setattr(services, "stored_exists", unreachable)
    assert services.export_request(user=user, params=ExportParams()).outcome == "existing"
    export.refresh_from_db()
    assert export.expired_at is None


def test_a_re_request_of_an_export_gone_from_the_store_builds_a_new_one(any_store, trades_data, user):
    export = _export(user)
    default_storage.delete(export.file_name)
    again = services.export_request(user=user, params=ExportParams())
    assert again.outcome == "created" and again.export.pk != export.pk
    export.refresh_from_db()
    assert export.expired_at is not None and "file missing from storage" in export.message


def test_retention_deletes_the_file_from_the_store(any_store, trades_data, user, monkeypatch):
    monkeypatch.setattr(conf, "EXPORT_KEEP_PER_USER", 5)
    old = _export(user)
    kept = _export(user, sortby="time_asc")
    assert sorted(_stored_names(any_store)) == sorted([old.file_name, kept.file_name])
    Export.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(hours=5))
    monkeypatch.setattr(conf, "EXPORT_MAX_AGE_HOURS", 1.0)
    assert services.exports_retention_apply() == 1
    old.refresh_from_db()
    assert old.expired_at is not None
    assert _stored_names(any_store) == [kept.file_name]
