"""Real worker cluster instances (`manage.py qcluster`, core's platform cluster) on the test database and
broker (PostgreSQL + Redis when the run has them, else SQLite + the ORM broker): jobs are never lost,
stolen or doubled, a SIGTERM to a cluster's process group stops it cleanly, and the recovery loop runs
outside the task queue.

Each test gives its clusters a queue of their own and short thresholds, so the kill tests stay fast."""

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from core import recovery, services
from core.models import JobStatus, WorkerCheck, WorkerHeartbeat
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

WORKER_STALE = 3  # seconds: an instance without a heartbeat for this long is dead
STOP_SECONDS = 4


class Clusters:
    """Worker cluster instances ("hosts") of one test, on a queue of the test's own."""

    def __init__(self, tmp_path, monkeypatch):
        from django.conf import settings
        from django_q.conf import Conf

        from conftest import BASE_DIR, database_url

        self.base_dir = BASE_DIR
        self.tmp_path = tmp_path
        self.queue = f"cl{os.getpid()}{uuid.uuid4().hex[:8]}"
        monkeypatch.setattr(Conf, "CLUSTER_NAME", self.queue)  # what this test queues goes to its clusters
        self.env = dict(
            os.environ, DATABASE_URL=database_url(), Q_CLUSTER_NAME=settings.Q_CLUSTER["name"],
            Q_QUEUE_NAME=self.queue, PLATFORM_MEDIA_ROOT=str(tmp_path), PYTHONUNBUFFERED="1",
            WORKER_STALE_SECONDS=str(WORKER_STALE), RECOVERY_INTERVAL_SECONDS="0.5",
            JOB_HEARTBEAT_STALE_SECONDS="30", WORKER_STOP_SECONDS=str(STOP_SECONDS),
        )
        self.env.pop("PYTEST_VERSION", None)
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, worker_id: str, *, workers: int = 1) -> subprocess.Popen:
        log = open(self.tmp_path / f"{worker_id}.log", "ab")
        env = dict(self.env, WORKER_ID=worker_id, Q_WORKERS=str(workers))
        proc = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=self.base_dir, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[worker_id] = proc
        wait_until(lambda: WorkerHeartbeat.objects.filter(name=worker_id).exists() or proc.poll() is not None,
                   timeout=60, message=f"{worker_id}'s first heartbeat")
        assert proc.poll() is None, self.output()
        return proc

    def signal_group(self, worker_id: str, sig: int) -> None:
        os.killpg(self.procs[worker_id].pid, sig)

    def output(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted(self.tmp_path.glob("*.log")))

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait(timeout=10)


@pytest.fixture
def clusters(tmp_path, monkeypatch):
    made = Clusters(tmp_path, monkeypatch)
    yield made
    made.close()


def check(owner, *, steps: int, interval_ms: int, safe: bool = False) -> WorkerCheck:
    """Queue a worker check through the service the health page uses (queued at once: no transaction)."""
    job = services.worker_check_create(user=owner, steps=steps, interval_ms=interval_ms)
    if safe:
        WorkerCheck.objects.filter(pk=job.pk).update(requeue_safe=True)
    return job


def fresh(job) -> WorkerCheck:
    return WorkerCheck.objects.get(pk=job.pk)


def running_on(job, worker_id: str):
    row = fresh(job)
    return row.status == JobStatus.RUNNING and row.worker_id == worker_id and row.progress > 0 and row


def test_kill_9_of_a_worker_mid_job_marks_it_in_time_and_another_worker_runs_a_safe_kind_once(
        clusters, admin_user, report):
    clusters.start("host-a")
    clusters.start("host-b")
    job = check(admin_user, steps=40, interval_ms=100, safe=True)
    first = wait_until(lambda: (row := fresh(job)).status == JobStatus.RUNNING and row.progress > 0 and row.worker_id,
                       timeout=60, message="the job running\n" + clusters.output())
    other = {"host-a": "host-b", "host-b": "host-a"}[first]
    clusters.signal_group(first, signal.SIGKILL)
    killed_at = time.monotonic()
    # Marked (queued again: a safe kind) within the stale threshold + 15 s.
    wait_until(lambda: fresh(job).requeues == 1, timeout=WORKER_STALE + 15, interval=0.1,
               message="the job of the dead host marked\n" + clusters.output())
    marked = time.monotonic() - killed_at
    assert marked <= WORKER_STALE + 15
    report(f"kill -9 of a worker host: its running job marked after {marked:.1f} s "
           f"(stale threshold {WORKER_STALE} s, recovery every 0.5 s)")
    assert "Worker lost; queued again" in fresh(job).message
    wait_until(lambda: fresh(job).is_finished, timeout=60, message="the job finished on the other\n" + clusters.output())
    done = fresh(job)
    assert (done.status, done.worker_id, done.requeues) == (JobStatus.SUCCEEDED, other, 1), clusters.output()


def test_kill_9_of_a_worker_fails_an_unsafe_kind_and_hands_its_prefetched_tasks_to_another(clusters, admin_user):
    clusters.start("host-a")
    running = check(admin_user, steps=100, interval_ms=100)
    wait_until(lambda: running_on(running, "host-a"), timeout=60, message="running on host-a\n" + clusters.output())
    prefetched = check(admin_user, steps=2, interval_ms=10)
    wait_until(lambda: "core.workercheck:%d" % prefetched.pk in WorkerHeartbeat.objects.get(name="host-a").held,
               timeout=20, message="the second task held by host-a")
    clusters.signal_group("host-a", signal.SIGKILL)
    killed_at = time.monotonic()
    clusters.start("host-b")
    wait_until(lambda: fresh(running).is_finished, timeout=WORKER_STALE + 15, interval=0.1,
               message="the running job marked\n" + clusters.output())
    assert time.monotonic() - killed_at <= WORKER_STALE + 15
    lost = fresh(running)
    assert (lost.status, lost.error, lost.requeues) == (JobStatus.FAILED, "worker lost", 0)
    # The task host-a held but never started is handed back and runs once, on host-b.
    wait_until(lambda: fresh(prefetched).is_finished, timeout=30, message="the prefetched job ran\n" + clusters.output())
    done = fresh(prefetched)
    assert (done.status, done.worker_id, done.requeues) == (JobStatus.SUCCEEDED, "host-b", 0)


def test_a_live_worker_holding_more_tasks_than_workers_is_not_robbed(clusters, admin_user, client):
    """django-q2 pulls ahead of its free workers (its internal queue, and one more waiting in put()): those
    tasks are on the instance's held list, so recovery elsewhere leaves them be, however long they wait."""
    clusters.start("host-a", workers=1)
    jobs = [check(admin_user, steps=8, interval_ms=400) for _ in range(3)]
    task_ids = {job.pk: fresh(job).task_id for job in jobs}

    def held_by_a():
        held = WorkerHeartbeat.objects.get(name="host-a").held
        return all("core.workercheck:%d" % job.pk in held for job in jobs) and held

    wait_until(held_by_a, timeout=30, message="host-a holding all three\n" + clusters.output())
    assert sum(fresh(job).status == JobStatus.QUEUED for job in jobs) == 2  # one worker: two wait
    # Health reports the instance with the job it runs and the tasks it holds.
    client.force_login(admin_user)
    instance = next(p for p in client.get("/api/health/").json()["worker"]["processes"] if p["name"] == "host-a")
    assert instance["up"] and instance["broker_ok"] and instance["database_ok"] and instance["state"] == "running"
    assert instance["running"] == [f"core.workercheck:{job.pk}" for job in jobs if fresh(job).status == "running"]
    # The health row is the last beat's: every job not finished by then is held.
    assert {f"core.workercheck:{job.pk}" for job in jobs if not fresh(job).is_finished} <= set(instance["held"])
    assert len(instance["held"]) >= 2
    # Another host's recovery pass, with thresholds shorter than the wait: nothing is taken.
    time.sleep(1.2)
    for _ in range(5):
        counts = recovery.jobs_recover(stale_seconds=1, worker_stale_seconds=WORKER_STALE)
        assert counts == {"worker_lost": 0, "requeued": 0}
        time.sleep(0.2)
    wait_until(lambda: all(fresh(job).is_finished for job in jobs), timeout=60,
               message="all three finished\n" + clusters.output())
    for job in jobs:
        done = fresh(job)
        assert (done.status, done.requeues, done.task_id) == (JobStatus.SUCCEEDED, 0, task_ids[job.pk])
        assert done.worker_id == "host-a"


def test_sigterm_to_the_process_group_stops_within_10_s_and_interrupts_its_jobs(clusters, admin_user, report):
    proc = clusters.start("host-a", workers=2)
    safe = check(admin_user, steps=40, interval_ms=100, safe=True)
    unsafe = check(admin_user, steps=100_000, interval_ms=100)  # hours: the stop must not wait for it
    wait_until(lambda: running_on(safe, "host-a") and running_on(unsafe, "host-a"), timeout=60,
               message="both running\n" + clusters.output())
    prefetched = check(admin_user, steps=2, interval_ms=10)
    wait_until(lambda: "core.workercheck:%d" % prefetched.pk in WorkerHeartbeat.objects.get(name="host-a").held,
               timeout=20, message="the third task held")
    clusters.signal_group("host-a", signal.SIGTERM)
    sent_at = time.monotonic()
    proc.wait(timeout=15)
    took = time.monotonic() - sent_at
    assert took < 10, clusters.output()
    report(f"SIGTERM to a worker's process group: stopped in {took:.1f} s with 2 jobs running "
           f"(WORKER_STOP_SECONDS={STOP_SECONDS})")
    assert proc.returncode == 0, clusters.output()
    stopped = fresh(unsafe)
    assert (stopped.status, stopped.message, stopped.error) == (
        JobStatus.FAILED, "Interrupted: the worker stopped", "interrupted: the worker stopped")
    requeued = fresh(safe)
    assert (requeued.status, requeued.requeues) == (JobStatus.QUEUED, 1)
    assert requeued.message == "Interrupted: the worker stopped; queued again"
    assert fresh(prefetched).status == JobStatus.QUEUED and fresh(prefetched).started_at is None
    assert not WorkerHeartbeat.objects.filter(name="host-a").exists()  # a clean stop leaves no heartbeat
    # Another instance runs what was handed back, each once.
    clusters.start("host-b", workers=2)
    wait_until(lambda: fresh(safe).is_finished and fresh(prefetched).is_finished, timeout=60,
               message="host-b ran them\n" + clusters.output())
    for job, requeues in ((safe, 1), (prefetched, 0)):
        done = fresh(job)
        assert (done.status, done.worker_id, done.requeues) == (JobStatus.SUCCEEDED, "host-b", requeues)


def test_a_burst_of_sigterms_to_the_process_group_still_stops_it(clusters, admin_user):
    """systemd, a supervisor and an impatient operator may each send SIGTERM: a signal arriving while the
    handler of the one before runs must not deadlock any process of the cluster."""
    proc = clusters.start("host-a", workers=2)
    job = check(admin_user, steps=100_000, interval_ms=100)
    wait_until(lambda: running_on(job, "host-a"), timeout=60, message="running\n" + clusters.output())
    sent_at = time.monotonic()
    for _ in range(3000):
        try:
            clusters.signal_group("host-a", signal.SIGTERM)
        except ProcessLookupError:
            break
    proc.wait(timeout=20)
    assert time.monotonic() - sent_at < 12 and proc.returncode == 0, clusters.output()
    assert fresh(job).message == "Interrupted: the worker stopped"


def test_sigterm_to_the_main_process_only_stops_it_too(clusters, admin_user):
    """systemd's KillMode=mixed (and `kill PID`) signal the main process only: it passes the stop on."""
    proc = clusters.start("host-a", workers=1)
    job = check(admin_user, steps=100_000, interval_ms=100)
    wait_until(lambda: running_on(job, "host-a"), timeout=60, message="running\n" + clusters.output())
    proc.send_signal(signal.SIGTERM)
    sent_at = time.monotonic()
    proc.wait(timeout=15)
    assert time.monotonic() - sent_at < 10 and proc.returncode == 0, clusters.output()
    assert fresh(job).message == "Interrupted: the worker stopped"
    import psutil

    left = [p for p in psutil.process_iter(["environ"]) if (p.info["environ"] or {}).get("Q_QUEUE_NAME") == clusters.queue]
    assert left == []  # no process of the cluster outlives it


def test_recovery_runs_while_every_worker_is_busy(clusters, admin_user):
    clusters.start("host-a", workers=1)
    busy = check(admin_user, steps=100, interval_ms=100)
    wait_until(lambda: running_on(busy, "host-a"), timeout=60, message="the only worker busy\n" + clusters.output())
    # A job of an instance that died (its heartbeat is old).
    ghost = WorkerCheck.objects.create(owner=admin_user, steps=1, interval_ms=1)
    WorkerHeartbeat.objects.create(name="ghost", pid=1, host="gone", seen_at=timezone.now() - timedelta(
        seconds=WORKER_STALE + 1))
    WorkerCheck.objects.filter(pk=ghost.pk).update(status=JobStatus.RUNNING, started_at=timezone.now(),
                                                   heartbeat_at=timezone.now(), worker_id="ghost")
    started = time.monotonic()
    wait_until(lambda: fresh(ghost).is_finished, timeout=10, interval=0.1,
               message="host-a's recovery loop marked the ghost's job\n" + clusters.output())
    assert time.monotonic() - started < 5
    assert fresh(ghost).error == "worker lost"
    assert fresh(busy).status == JobStatus.RUNNING  # the busy worker was never needed for it


def test_sigterm_interrupts_a_script_run_keeping_its_output_and_leaves_no_process(clusters, user, settings):
    """A script run is stopped by the worker itself at SIGTERM, not killed with it: what it printed is kept,
    the log says why it ended, the run is failed (never queued again: a script may not be safe to run twice)
    and none of its processes outlives the cluster."""
    from scripts_runner import services as run_services
    from scripts_runner.models import EndReason, LogChunk, ScriptRun
    from scripts_runner.tests.conftest import require_sandbox

    require_sandbox()
    marker = f"stopme-{uuid.uuid4().hex[:8]}"
    clusters.env["PLATFORM_MEDIA_ROOT"] = str(settings.MEDIA_ROOT)  # the test's storage is the cluster's
    proc = clusters.start("host-a", workers=1)
    run_services.script_access_set(user=user, run=True)
    code = (f"import subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)', '{marker}'])\n"
            f"print('started', flush=True)\n"
            f"while True:\n    time.sleep(1)\n")
    script = run_services.script_create(owner=user, name="forever.py", code=code.encode())
    run = run_services.script_run_create(script=script, user=user)

    def log() -> str:
        return "".join(chunk.text for chunk in LogChunk.objects.filter(run=run).order_by("seq"))

    wait_until(lambda: "started" in log(), timeout=60, message="the run printed\n" + clusters.output())
    clusters.signal_group("host-a", signal.SIGTERM)
    sent_at = time.monotonic()
    proc.wait(timeout=15)
    took = time.monotonic() - sent_at
    assert took < 10 and proc.returncode == 0, clusters.output()
    ended = ScriptRun.objects.get(pk=run.pk)
    assert (ended.status, ended.end_reason, ended.message) == (
        JobStatus.FAILED, EndReason.WORKER_STOPPED, "Interrupted: the worker stopped"), clusters.output()
    assert ended.requeues == 0
    text = log()
    assert "started" in text and "[the worker stopped: the run was interrupted" in text, text
    import psutil

    left = [p.pid for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])
            and p.status() != psutil.STATUS_ZOMBIE]
    assert left == []
