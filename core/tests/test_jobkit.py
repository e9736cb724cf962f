"""core.jobkit: the one job runner and the reporter every job body uses (progress, stop check, watcher)."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from core import jobkit, recovery, services
from core.jobkit import JobReporter
from core.models import JobStatus, WorkerCheck


def running_check(owner) -> WorkerCheck:
    job = WorkerCheck.objects.create(owner=owner, steps=1, interval_ms=1)
    assert services.job_start(job=job)
    return job


def stored(job: WorkerCheck) -> WorkerCheck:
    return WorkerCheck.objects.get(pk=job.pk)


@pytest.mark.django_db
def test_progress_is_written_at_most_every_progress_seconds_unless_forced(user):
    job = running_check(user)
    reporter = JobReporter(job, progress_seconds=3600)
    assert reporter.progress(fraction=0.1, message="first") is True
    assert reporter.progress(fraction=0.2, message="too soon") is False
    assert (stored(job).progress, stored(job).message) == (0.1, "first")
    assert reporter.progress(fraction=0.3, message="forced", force=True, interval_ms=7) is True
    assert (stored(job).progress, stored(job).message, stored(job).interval_ms) == (0.3, "forced", 7)


@pytest.mark.django_db
def test_progress_with_a_minimal_step_skips_writes_that_barely_move(user):
    job = running_check(user)
    reporter = JobReporter(job, progress_seconds=0)
    assert reporter.progress(fraction=0.5, min_step=0.01)
    assert not reporter.progress(fraction=0.505, min_step=0.01)
    assert not reporter.progress(fraction=0.4, min_step=0.01)  # never backwards
    assert reporter.progress(fraction=0.52, min_step=0.01)
    assert stored(job).progress == 0.52


@pytest.mark.django_db
def test_the_stop_check_is_read_at_most_every_check_seconds_and_stays_once_seen(user):
    job = running_check(user)
    reporter = JobReporter(job, check_seconds=3600)
    assert reporter.should_stop() is False
    services.job_cancel(job=stored(job), by=user)
    assert reporter.should_stop() is False  # not read again yet
    assert reporter.should_stop(fresh=True) is True and reporter.cancelled
    WorkerCheck.objects.filter(pk=job.pk).update(cancel_requested=False)
    assert reporter.should_stop(fresh=True) is True
    with pytest.raises(services.JobCancelled):
        reporter.raise_if_stopped()


@pytest.mark.django_db
def test_inline_only_the_body_thread_reads_the_stop_check(user):
    """Inline, another thread cannot see the body's uncommitted rows: it answers what the body read."""
    job = running_check(user)
    reporter = JobReporter(job, check_seconds=0)
    assert reporter.inline
    services.job_cancel(job=stored(job), by=user)
    answers = []

    def from_another_thread():
        answers.append(reporter.should_stop(fresh=True))

    worker = threading.Thread(target=from_another_thread)
    worker.start()
    worker.join()
    assert answers == [False] and reporter.stop is None
    assert reporter.should_stop(fresh=True) is True
    worker = threading.Thread(target=from_another_thread)
    worker.start()
    worker.join()
    assert answers == [False, True]


@pytest.mark.django_db
def test_a_job_the_recovery_pass_failed_stops_its_body_and_keeps_the_verdict(user):
    job = WorkerCheck.objects.create(owner=user)
    reached = []

    def body(job):
        reporter = JobReporter(job)
        reporter.raise_if_stopped(fresh=True)  # running: goes on
        WorkerCheck.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
        assert recovery.jobs_recover(stale_seconds=60)["worker_lost"] == 1
        reporter.raise_if_stopped(fresh=True)
        reached.append("after the stop check")

    job = jobkit.job_execute(model=WorkerCheck, pk=job.pk, body=body)
    assert reached == []
    assert (job.status, job.error, job.message) == (JobStatus.FAILED, "worker lost", "Worker lost")


@pytest.mark.django_db
def test_a_job_deleted_while_it_runs_stops_its_body(user):
    job = WorkerCheck.objects.create(owner=user)
    reached = []

    def body(job):
        WorkerCheck.objects.filter(pk=job.pk).delete()
        services.job_raise_if_cancelled(job=job)
        reached.append("after the stop check")

    assert jobkit.job_execute(model=WorkerCheck, pk=job.pk, body=body) is None
    assert reached == [] and not WorkerCheck.objects.exists()


@pytest.mark.django_db
def test_inline_the_watcher_starts_no_thread(user):
    job = running_check(user)
    reporter = JobReporter(job)
    with reporter.watch(every=0.01, tick=lambda: None):
        names = [thread.name for thread in threading.enumerate()]
    assert reporter.inline and not [name for name in names if name.startswith("watch-")]


@pytest.mark.django_db(transaction=True)
def test_the_watcher_ticks_then_calls_on_stop_at_every_beat_once_cancelled(user):
    job = running_check(user)
    reporter = JobReporter(job, inline=False)
    beats: list[str] = []
    ticked, stopped_twice = threading.Event(), threading.Event()

    def tick():
        beats.append("tick")
        if beats.count("tick") >= 2:
            ticked.set()

    def on_stop():
        beats.append("stop")
        if beats.count("stop") >= 2:
            stopped_twice.set()

    with reporter.watch(every=0.02, tick=tick, on_stop=on_stop):
        assert ticked.wait(20)
        services.job_cancel(job=stored(job), by=user)
        assert stopped_twice.wait(20)
    first_stop = beats.index("stop")
    assert "tick" not in beats[first_stop:] and reporter.cancelled
