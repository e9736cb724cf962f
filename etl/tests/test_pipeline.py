from datetime import date

import pytest

from core.models import JobStatus
from etl import services
from etl.models import AuditLog, FetchedFile, FetchJob, Record

from .conftest import write_demo_day

DAY = date(2025, 3, 4)
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("etl_fast")]


def fetch(user, branch, task_queue, *, pos=1, day=DAY, force=False):
    job, queued = services.fetch_job_request(user=user, branch=branch, pos=pos, work_date=day, force=force)
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


def test_rejected_rows_are_reported_on_the_job(user, old_branch, pos_root, task_queue):
    folder = pos_root / "B01" / "1" / "20250304"
    folder.mkdir(parents=True)
    header = "TNSC;DATE;HEURE;RAYON;ARTICLE;QTE;MONTANT\r\n"
    good = "".join(f"{i};04/03/2025;10:00:{i:02d};Épicerie;PLU{i};1;2,50\r\n" for i in range(1, 31))
    bad = "31;99/03/2025;10:00:00;X;PLU1;1;1,00\r\n32;04/03/2025;10:00:00;X;PLU1;un;1,00\r\n"
    (folder / "rd5000_20250304_2300.csv").write_bytes((header + good + bad).encode("cp1252"))
    (folder / "rd5500_20250304_2300.csv").write_bytes(b"TNSC;DATE;MODE;MONTANT\r\n1;04/03/2025;CARD;2,50\r\nbroken\r\n")
    job, _ = fetch(user, old_branch, task_queue)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.records_written == 30
    assert job.counts["parsed"] == 30 and job.counts["rejected"] == 3 and job.counts["unpaid_lines"] == 29
    reasons = [(e["filetype"], e["line"], e["reason"].split(" ")[0]) for e in job.rejected_examples]
    assert reasons == [("rd5000", 32, "bad"), ("rd5000", 33, "bad"), ("rd5500", 3, "expected")]
    assert "3 rejected row(s)" in job.message
