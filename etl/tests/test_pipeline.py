from datetime import date

import pytest

from core.models import JobStatus
from etl import services
from etl.models import AuditLog, FetchedFile, FetchJob, Record

from .conftest import write_demo_day

DAY = date(2025, 3, 4)
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("etl_fast")]


def fetch(user, branch, task_queue, *, pos=1, day=DAY, force=False):
    job, queued = services.fetch_request(user=user, branch=branch, pos=pos, work_date=day, force=force)
    task_queue.run()
    job.refresh_from_db()
    return job, queued


def test_old_branch_day_end_to_end(user, old_branch, pos_root, task_queue):
    files = write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=120)
    job, queued = fetch(user, old_branch, task_queue)
    assert queued
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.counts["listed"] == len(files)
    assert job.records_written == 120
    assert Record.objects.filter(branch=old_branch, pos=1, work_date=DAY).count() == 120
    chosen = job.chosen_files["rd5000"]
    assert chosen["chosen"] == "rd5000_20250304_2300.csv"
    assert all(c["rows"] is not None for c in chosen["candidates"])
    stored = FetchedFile.objects.filter(job=job, chosen=True)
    assert {f.filetype for f in stored} == {"rd5000", "rd5500"}
    record = Record.objects.filter(job=job).order_by("line_no").first()
    assert record.payment_method
    assert not record.item_code.startswith("PLU")


def test_new_branch_utf8_dialect(user, new_branch, pos_root, task_queue):
    write_demo_day(pos_root, branch="N01", pos=2, day=DAY, old=False, lines=80)
    job, _ = fetch(user, new_branch, task_queue, pos=2)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.records_written == 80
    assert job.counts["rejected"] == 0
    departments = set(Record.objects.filter(job=job).values_list("department", flat=True))
    assert departments & {"Épicerie", "Crèmerie", "Fruits & légumes", "Boulangerie", "Boissons", "Hygiène", "Surgelés"}


def test_idempotent_and_force(user, old_branch, pos_root, task_queue):
    write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=60)
    job, _ = fetch(user, old_branch, task_queue)
    again, queued = fetch(user, old_branch, task_queue)
    assert again.pk == job.pk and not queued
    assert again.attempt_count == 1
    forced, queued = fetch(user, old_branch, task_queue, force=True)
    assert queued and forced.status == JobStatus.SUCCEEDED and forced.attempt_count == 2
    assert Record.objects.filter(branch=old_branch, pos=1, work_date=DAY).count() == 60
    force_log = AuditLog.objects.get(job=job, action=AuditLog.Action.FORCE)
    assert force_log.detail["records_before"] == 60 and force_log.actor == user
    finished = AuditLog.objects.get(job=job, action=AuditLog.Action.FINISHED)
    assert finished.detail == {"force": True, "records_before": 60, "records_after": 60}
    assert FetchJob.objects.count() == 1
