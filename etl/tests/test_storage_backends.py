"""ETL fetches on both stores (local disk and a real S3-compatible server): the chosen raw files are
stored, downloaded with Range support, replaced on a forced refetch, and a lost one is a clear 404."""

from datetime import date

import pytest
from django.core.files.storage import default_storage

from core.models import JobStatus
from core.storage import stored_walk
from etl import services
from etl.models import FetchedFile

from .conftest import write_demo_day

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("etl_fast")]
DAY = date(2025, 3, 4)


def _fetch(user, branch, task_queue, *, force=False):
    job, _ = services.fetch_job_request(user=user, branch=branch, pos=1, work_date=DAY, force=force)
    task_queue.run()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    return job


def test_a_fetch_stores_its_raw_files_and_they_download_with_range(any_store, user, old_branch, pos_root,
                                                                      task_queue, auth_client):
    files = write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=60)
    job = _fetch(user, old_branch, task_queue)
    stored = {f.file.name: f for f in FetchedFile.objects.filter(job=job)}
    assert sorted(name for name, _ in stored_walk()) == sorted(stored)
    if any_store is not None:
        assert any_store.keys() == sorted(stored)
    raw = next(f for f in stored.values() if f.filetype == "rd5000")
    client = auth_client(user)
    full = client.get(f"/api/etl/files/{raw.pk}/download/")
    assert full.status_code == 200 and "attachment" in full["Content-Disposition"]
    body = b"".join(full.streaming_content)
    assert body == files[raw.filename]
    part = client.get(f"/api/etl/files/{raw.pk}/download/", HTTP_RANGE="bytes=10-19")
    assert part.status_code == 206 and b"".join(part.streaming_content) == body[10:20]

    # A forced refetch replaces the stored raw files of the earlier attempt (after its commit).
    again = _fetch(user, old_branch, task_queue, force=True)
    newer = sorted(f.file.name for f in FetchedFile.objects.filter(job=again))
    assert sorted(name for name, _ in stored_walk()) == newer and not set(newer) & set(stored)


def test_a_raw_file_the_store_lost_is_a_clear_404(any_store, user, old_branch, pos_root, task_queue, auth_client,
                                                  client):
    write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=20)
    job = _fetch(user, old_branch, task_queue)
    raw = FetchedFile.objects.filter(job=job).first()
    client.force_login(user)
    assert client.get(f"/etl/files/{raw.pk}/download/").status_code == 200
    default_storage.delete(raw.file.name)
    api = auth_client(user).get(f"/api/etl/files/{raw.pk}/download/")
    assert api.status_code == 404 and not api.streaming
    assert api.json() == {"detail": "The file is no longer stored."}
    page = client.get(f"/etl/files/{raw.pk}/download/")
    assert page.status_code == 404 and not page.streaming
    assert str(default_storage.location) not in page.content.decode()
