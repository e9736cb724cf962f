"""The pipeline against a real HTTP host on 127.0.0.1: transient errors, timeouts, hostile listings, cancel."""

import os
import socket
from datetime import date

import pytest

from core.models import JobStatus
from etl import conf, pipeline, services
from etl.models import FetchedFile, FileSource, Record

from .conftest import write_demo_day

DAY = date(2025, 3, 4)
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("etl_fast")]


def run(user, branch, task_queue, *, force=False, pos=1):
    job, _ = services.fetch_job_request(user=user, branch=branch, pos=pos, work_date=DAY, force=force)
    task_queue.run()
    job.refresh_from_db()
    return job


def test_retry_on_5xx_then_success(user, old_branch, pos_root, pos_host, task_queue):
    write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=40)
    pos_host.faults["fail_next"] = 2  # listing answered 503 twice, then fine
    job = run(user, old_branch, task_queue)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.counts["http_retries"] == 2
    assert job.records_written == 40


def test_5xx_outlasting_retries_fails_with_error_and_retry_works(user, old_branch, pos_root, pos_host, task_queue):
    write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=40)
    pos_host.faults["fail_next"] = 10
    job = run(user, old_branch, task_queue)
    assert job.status == JobStatus.FAILED
    assert "HTTP 503" in job.error and "after 3 attempts" in job.error
    pos_host.faults.clear()
    services.fetch_job_retry(user=user, job=job)
    task_queue.run()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.attempt_count == 2


def test_timeout(user, old_branch, pos_root, pos_host, task_queue):
    write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=10)
    FileSource.objects.filter(pk=old_branch.source_id).update(timeout_seconds=0.2, max_retries=1)
    pos_host.faults["delay"] = 1.0
    job = run(user, old_branch, task_queue)
    assert job.status == JobStatus.FAILED
    assert "timed out" in job.error and job.counts["http_retries"] == 1


def test_remote_host_down(user, old_branch, task_queue):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    FileSource.objects.filter(pk=old_branch.source_id).update(
        list_url_template=f"http://127.0.0.1:{port}/list/{{branch}}/{{pos}}/{{date}}", max_retries=1)
    job = run(user, old_branch, task_queue)
    assert job.status == JobStatus.FAILED
    assert "cannot reach" in job.error


def test_listing_pointing_outside_the_host_is_rejected(user, old_branch, pos_root, pos_host, task_queue):
    files = write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=20)
    good = next(name for name in files if name.startswith("rd5000") and name.endswith("2300.csv"))
    pos_host.faults["listing"] = {"files": [
        {"name": "../../../etc/passwd"},
        {"name": "rd5000_evil.csv", "url": "http://203.0.113.9/steal"},
        {"name": "/etc/rd5000.csv"},
        {"name": good, "size": len(files[good])},
    ]}
    job = run(user, old_branch, task_queue)
    assert job.status == JobStatus.SUCCEEDED, job.error
    rejected = {f["name"]: f["reason"] for f in job.file_list if f.get("rejected")}
    assert "outside" in rejected["../../../etc/passwd"]
    assert "outside the host" in rejected["rd5000_evil.csv"]
    assert "/etc/rd5000.csv" in rejected
    assert not any("steal" in r or "passwd" in r for r in pos_host.requests)
    assert job.chosen_files["rd5000"]["chosen"] == good


def test_file_far_larger_than_expected_is_capped(user, old_branch, pos_root, pos_host, task_queue, monkeypatch):
    write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=20)
    huge = pos_root / "B01" / "1" / "20250304" / "rd5000_20250304_2359.csv"
    huge.write_bytes(b"x;" * 200_000)
    monkeypatch.setattr(conf, "MAX_FILE_BYTES", 100_000)
    job = run(user, old_branch, task_queue)
    assert job.status == JobStatus.SUCCEEDED, job.error
    candidates = {c["name"]: c for c in job.chosen_files["rd5000"]["candidates"]}
    assert "cap" in candidates["rd5000_20250304_2359.csv"]["problem"]
    assert job.chosen_files["rd5000"]["chosen"] != "rd5000_20250304_2359.csv"
    # The listing may lie about the size: the download is checked against the cap all the same.
    pos_host.faults["listing"] = {"files": [{"name": "rd5000_20250304_2359.csv", "size": 10}]}
    job = run(user, old_branch, task_queue, force=True)
    assert job.status == JobStatus.FAILED and "No usable rd5000" in job.error
    assert "the cap is 100000" in job.chosen_files["rd5000"]["candidates"][0]["problem"]


def test_truncated_and_garbled_versions_lose_to_the_full_file(user, new_branch, pos_root, task_queue):
    files = write_demo_day(pos_root, branch="N01", pos=1, day=DAY, old=False, lines=60,
                           truncated_chance=1, garbled_chance=1)
    assert "rd5000_20250304_2330.csv" in files and "rd5000_20250304_0100.csv" in files
    job = run(user, new_branch, task_queue)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.chosen_files["rd5000"]["chosen"] == "rd5000_20250304_2300.csv"
    rows = {c["name"]: c["rows"] for c in job.chosen_files["rd5000"]["candidates"]}
    assert rows["rd5000_20250304_0100.csv"] == 0 and rows["rd5000_20250304_2330.csv"] < 60


def test_no_sales_file_fails_and_keeps_what_it_got(user, old_branch, pos_root, task_queue):
    folder = pos_root / "B01" / "1" / "20250304"
    folder.mkdir(parents=True)
    (folder / "rd5500_20250304_2300.csv").write_bytes(b"TNSC;DATE;MODE;MONTANT\r\n1;04/03/2025;CARD;1,00\r\n")
    (folder / "rd5000_20250304_2300.csv").write_bytes(b"TNSC;DATE;HEURE;RAYON;ARTICLE;QTE;MONTANT\r\n")
    job = run(user, old_branch, task_queue)
    assert job.status == JobStatus.FAILED
    assert "No usable rd5000 file" in job.error and "empty" in job.error
    kept = FetchedFile.objects.filter(job=job)
    assert {f.filename for f in kept} == {"rd5500_20250304_2300.csv", "rd5000_20250304_2300.csv"}
    assert not any(f.chosen for f in kept)


def test_missing_day_on_host_fails_clearly(user, old_branch, task_queue):
    job = run(user, old_branch, task_queue)
    assert job.status == JobStatus.FAILED and "no file of this type was listed" in job.error


def test_cancel_mid_job_keeps_previous_records(user, old_branch, pos_root, task_queue, monkeypatch):
    write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=50)
    job = run(user, old_branch, task_queue)
    assert Record.objects.filter(job=job).count() == 50
    # New versions appear on the host; a forced refetch is cancelled while it parses.
    write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=80, seed=2)
    real_parse = pipeline.parse_sales

    def parse_then_cancel(*args, **kwargs):
        services.fetch_job_cancel(user=user, job=job)
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(pipeline, "parse_sales", parse_then_cancel)
    job = run(user, old_branch, task_queue, force=True)
    assert job.status == JobStatus.CANCELLED
    assert Record.objects.filter(branch=old_branch, pos=1, work_date=DAY).count() == 50
    assert job.audit.filter(action="cancel").exists()


def test_directory_source(user, pos_root, task_queue):
    from etl.models import Branch

    source = FileSource.objects.create(name="share", kind=FileSource.Kind.DIRECTORY, root_path=str(pos_root))
    branch = Branch.objects.create(code="B07", name="Share branch", source=source)
    write_demo_day(pos_root, branch="B07", pos=2, day=DAY, old=True, lines=25)
    (pos_root / "B07" / "2" / "20250304" / "rd5000_link.csv").symlink_to("/etc/hostname")
    job = run(user, branch, task_queue, pos=2)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.records_written == 25
    assert any(f.get("rejected") and f["name"] == "rd5000_link.csv" for f in job.file_list)


def test_transient_failure_schedules_automatic_retry_with_backoff(user, old_branch, pos_root, pos_host, task_queue,
                                                                  monkeypatch):
    from django_q.models import Schedule

    from etl import tasks

    monkeypatch.setattr(conf, "JOB_AUTO_RETRIES", 1)
    write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=15)
    pos_host.faults["status"] = 502
    job = run(user, old_branch, task_queue)
    assert job.status == JobStatus.FAILED and "retrying automatically" in job.message
    scheduled = Schedule.objects.get(func="etl.tasks.fetch_job_auto_retry")
    assert scheduled.schedule_type == Schedule.ONCE and scheduled.args == f"({job.pk}, 1)"
    pos_host.faults.clear()
    assert tasks.fetch_job_auto_retry(job.pk, 1) is True
    assert tasks.fetch_job_auto_retry(job.pk, 1) is False  # already re-queued: no double run
    task_queue.run()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.attempt_count == 2
    assert job.audit.filter(action="retry", actor=None, detail__automatic=True).exists()
    # Attempts exhausted: the failure stays for a person to look at.
    pos_host.faults["status"] = 502
    job = run(user, old_branch, task_queue, force=True)
    assert job.status == JobStatus.FAILED and "retrying" not in job.message
    assert Schedule.objects.filter(func="etl.tasks.fetch_job_auto_retry").count() == 1


def test_plain_text_listing_and_credentials(user, old_branch, pos_root, pos_host, task_queue):
    import base64

    write_demo_day(pos_root, branch="B01", pos=1, day=DAY, old=True, lines=12)
    FileSource.objects.filter(pk=old_branch.source_id).update(
        listing_format=FileSource.ListingFormat.TEXT, list_url_template=pos_host.list_template + "?format=text",
        username="etl", password="s3cret")
    job = run(user, old_branch, task_queue)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.records_written == 12
    expected = "Basic " + base64.b64encode(b"etl:s3cret").decode()
    assert pos_host.auth_headers and set(pos_host.auth_headers) == {expected}


def test_rate_limit_spaces_requests_per_host(monkeypatch, settings):
    from etl import sources

    settings.REDIS_URL = ""  # the embedded default: spaced within the process
    clock = {"now": 100.0}
    slept = []
    monkeypatch.setattr(sources.time_module, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(sources.time_module, "sleep", lambda seconds: slept.append(round(seconds, 3)))
    monkeypatch.setattr(sources, "_next_slot", {})
    for _ in range(4):
        sources._rate_wait("pos.example:80", 4.0)
    sources._rate_wait("other.example:80", 4.0)
    assert slept == [0.25, 0.5, 0.75]  # the other host is not held back


SHARED_CLIENT = """
import os, sys, time
import django
django.setup()
from etl import sources
time.sleep(max(0.0, float(sys.argv[4]) - time.time()))  # both processes start asking at the same moment
stamps = []
for _ in range(int(sys.argv[2])):
    sources._rate_wait(sys.argv[1], float(sys.argv[3]))
    stamps.append(time.time())
print(" ".join(f"{t:.6f}" for t in stamps))
"""


def test_rate_limit_is_shared_by_worker_processes_through_redis(tmp_path):
    """Two worker processes asking one host at 10/s together: with Redis configured their requests
    are spaced 0.1 s apart across both, not 0.1 s apart in each."""
    import subprocess
    import sys
    import time
    import uuid

    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    cluster = f"ratetest{uuid.uuid4().hex[:8]}"
    host = "pos.example:80"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(REDIS_URL=url, Q_CLUSTER_NAME=cluster, DJANGO_SETTINGS_MODULE="config.settings",
               DJANGO_SECRET_KEY="rate-limit-test-" + "k" * 40, PLATFORM_VAR_DIR=str(tmp_path))
    start_at = str(time.time() + 8)
    procs = [subprocess.Popen([sys.executable, "-c", SHARED_CLIENT, host, "5", "10", start_at], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    stamps = sorted(float(t) for proc in procs for t in proc.communicate(timeout=60)[0].split())
    assert all(proc.returncode == 0 for proc in procs)
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(stamps) == 10
    # Spaced across both: 10 requests span at least 9 intervals (each process alone would span 4, side
    # by side). Single gaps may shrink by the wake-up delay of a busy machine, so the span is the check.
    assert stamps[-1] - stamps[0] >= 0.85, gaps
    assert sorted(gaps)[len(gaps) // 2] >= 0.09, gaps
    redis.Redis.from_url(url).delete(f"{cluster}:etl:rate:{host}")  # it expires by itself about 1 s later


def test_url_templates_only_fill_known_placeholders():
    from etl.sources import fill_template

    url = fill_template("https://h/{branch}/{name}?x={branch.__class__}&p={pos}", branch="B 1/..", name="a b.csv", pos="1")
    assert url == "https://h/B%201%2F../a%20b.csv?x={branch.__class__}&p=1"
