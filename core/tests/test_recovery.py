"""Recovery in one process: held lists on the configured broker (ORM, or Redis when the run has it), the
recovery pass's rules, the stop cause job bodies see, and the advisory lock that lets one host act."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core import jobkit, recovery, services, workerhost
from core.brokers import task_broker
from core.models import JobStatus, WorkerCheck, WorkerHeartbeat
from core.signals import job_worker_lost


@pytest.fixture
def queue(monkeypatch, settings):
    """A queue of the test's own on the configured broker."""
    from django_q.conf import Conf

    name = f"rec{uuid.uuid4().hex[:10]}"
    monkeypatch.setattr(Conf, "CLUSTER_NAME", name)
    yield name
    broker = task_broker()
    if hasattr(broker.connection, "scan_iter"):
        for key in broker.connection.scan_iter(match=f"django_q:{name}:*"):
            broker.connection.delete(key)
    else:
        from django_q.models import OrmQ

        OrmQ.objects.filter(key__startswith=name).delete()


@pytest.fixture
def stopping():
    workerhost.stopping_set()
    yield
    workerhost.stopping_clear()


def make_check(owner, **fields) -> WorkerCheck:
    return WorkerCheck.objects.create(owner=owner, steps=fields.pop("steps", 2), interval_ms=1, **fields)


def as_instance(settings, worker_id: str) -> None:
    settings.WORKER_ID = worker_id


def beat(worker_id: str, *, age: float = 0.0, began_ago: float = 60.0) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(name=worker_id, defaults={
        "pid": 1, "host": "h", "seen_at": now - timedelta(seconds=age),
        "started_at": now - timedelta(seconds=began_ago)})


def queued_with_task(owner, commits):
    job = make_check(owner)
    services.job_enqueue(job=job)
    commits.commit()
    job.refresh_from_db()
    assert job.task_id
    WorkerCheck.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    return job


# --- held lists -------------------------------------------------------------------------------------


def test_a_task_taken_by_an_instance_is_on_its_held_list_until_acknowledged(user, commits, queue, settings):
    job = queued_with_task(user, commits)
    broker = task_broker()
    as_instance(settings, "host-a")
    taken = broker.dequeue()
    assert taken and [t.id for t in broker.held_tasks("host-a")] == [job.task_id]
    assert broker.queued_tasks() == [] and broker.holders() == {"host-a"}
    broker.acknowledge(taken[0][0])
    assert broker.held_tasks("host-a") == []


def test_a_live_instance_keeps_its_held_tasks_however_long_they_wait(user, commits, queue, settings):
    job = queued_with_task(user, commits)
    as_instance(settings, "host-a")
    task_broker().dequeue()
    beat("host-a")
    as_instance(settings, "host-b")  # the pass runs on another host
    assert recovery.jobs_recover(stale_seconds=1, worker_stale_seconds=30) == {"worker_lost": 0, "requeued": 0}
    fresh = WorkerCheck.objects.get(pk=job.pk)
    assert (fresh.status, fresh.task_id) == (JobStatus.QUEUED, job.task_id)
    assert [t.id for t in task_broker().held_tasks("host-a")] == [job.task_id]


def test_a_dead_instances_held_tasks_go_back_to_the_queue_once(user, commits, queue, settings):
    waiting = queued_with_task(user, commits)
    finished = queued_with_task(user, commits)
    as_instance(settings, "host-a")
    broker = task_broker()
    assert broker.dequeue() and broker.dequeue()
    WorkerCheck.objects.filter(pk=finished.pk).update(status=JobStatus.SUCCEEDED)
    beat("host-a", age=120)
    as_instance(settings, "host-b")
    assert recovery.jobs_recover(stale_seconds=60, worker_stale_seconds=30)["requeued"] == 1
    assert [t.id for t in broker.queued_tasks()] == [waiting.task_id]  # the same task, not a second one
    assert broker.held_tasks("host-a") == [] and broker.holders() == set()
    assert recovery.jobs_recover(stale_seconds=60, worker_stale_seconds=30)["requeued"] == 0
    assert WorkerCheck.objects.get(pk=waiting.pk).task_id == waiting.task_id


def test_a_queued_job_whose_task_is_nowhere_is_queued_again_whatever_its_kind(user, commits, queue, monkeypatch):
    job = make_check(user)  # not safe to re-run once started, but it never started
    WorkerCheck.objects.filter(pk=job.pk).update(task_id="vanished", created_at=timezone.now() - timedelta(minutes=5))
    assert recovery.jobs_recover(stale_seconds=60)["requeued"] == 1
    commits.commit()
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.task_id not in ("", "vanished")
    assert [t.id for t in task_broker().queued_tasks()] == [job.task_id]


# --- running jobs -----------------------------------------------------------------------------------


def running(owner, worker_id: str, **fields) -> WorkerCheck:
    job = make_check(owner, **fields)
    now = timezone.now()
    WorkerCheck.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, started_at=now, heartbeat_at=now,
                                                 worker_id=worker_id)
    job.refresh_from_db()
    return job


def test_a_running_job_is_judged_by_its_instances_heartbeat(user, commits, queue):
    beat("live")
    beat("dead", age=31)
    alive, lost = running(user, "live"), running(user, "dead")
    outside = running(user, "a-shell-somewhere")  # no instance row: judged by its own heartbeat only
    assert recovery.jobs_recover(stale_seconds=60, worker_stale_seconds=30)["worker_lost"] == 1
    assert WorkerCheck.objects.get(pk=alive.pk).status == JobStatus.RUNNING
    assert WorkerCheck.objects.get(pk=outside.pk).status == JobStatus.RUNNING
    gone = WorkerCheck.objects.get(pk=lost.pk)
    assert (gone.status, gone.error, gone.message) == (JobStatus.FAILED, "worker lost", "Worker lost")


def test_a_job_begun_in_an_instances_previous_life_is_lost(user, commits, queue):
    """The same WORKER_ID restarted (systemd): its new life's heartbeat is fresh, the old life's job is lost."""
    job = running(user, "host-a")
    beat("host-a", began_ago=0)
    WorkerHeartbeat.objects.filter(name="host-a").update(started_at=timezone.now() + timedelta(seconds=1))
    assert recovery.jobs_recover(stale_seconds=60, worker_stale_seconds=30)["worker_lost"] == 1
    assert WorkerCheck.objects.get(pk=job.pk).status == JobStatus.FAILED


def test_a_heartbeat_row_made_again_keeps_its_lifes_start(user, commits, queue, monkeypatch):
    """The row of a live instance deleted meanwhile (a database flush, a hand clean-up) is made again at its
    next beat with the start of the same life: the jobs that life runs are not taken for an earlier life's."""
    from core import workerhost

    monkeypatch.setitem(workerhost._instance, "began", None)
    workerhost.instance_beat(worker_id="host-r", begin=True)
    began = WorkerHeartbeat.objects.get(name="host-r").started_at
    job = running(user, "host-r")
    WorkerHeartbeat.objects.filter(name="host-r").delete()
    workerhost.instance_beat(worker_id="host-r")
    assert WorkerHeartbeat.objects.get(name="host-r").started_at == began < job.started_at
    assert recovery.jobs_recover(stale_seconds=60, worker_stale_seconds=30)["worker_lost"] == 0
    assert WorkerCheck.objects.get(pk=job.pk).status == JobStatus.RUNNING


def test_a_safe_kind_is_queued_again_once_then_failed(user, commits, queue):
    job = running(user, "dead", requeue_safe=True)
    beat("dead", age=120)
    lost = []
    job_worker_lost.connect(lambda sender, job, **kw: lost.append(job.pk), sender=WorkerCheck, weak=False,
                            dispatch_uid="test_once")
    try:
        counts = recovery.jobs_recover(stale_seconds=60, worker_stale_seconds=30)
        commits.commit()
        assert counts == {"worker_lost": 1, "requeued": 1}
        again = WorkerCheck.objects.get(pk=job.pk)
        assert (again.status, again.requeues, again.worker_id, again.started_at) == (JobStatus.QUEUED, 1, "", None)
        assert again.message == "Worker lost; queued again" and lost == []
        assert [t.id for t in task_broker().queued_tasks()] == [again.task_id]
        # It runs again on the same dead instance's id and is lost again: failed this time.
        WorkerCheck.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, worker_id="dead",
                                                     started_at=timezone.now())
        assert recovery.jobs_recover(stale_seconds=60, worker_stale_seconds=30) == {"worker_lost": 1, "requeued": 0}
        assert WorkerCheck.objects.get(pk=job.pk).status == JobStatus.FAILED and lost == [job.pk]
    finally:
        job_worker_lost.disconnect(sender=WorkerCheck, dispatch_uid="test_once")


# --- the stop cause -----------------------------------------------------------------------------------


def test_a_stopping_worker_is_a_stop_cause_the_reporter_sees(user, stopping):
    job = running(user, "x")
    reporter = jobkit.JobReporter(job, inline=False)
    assert reporter.should_stop() and isinstance(reporter.stop, services.WorkerStopping)
    assert not reporter.cancelled
    with pytest.raises(services.WorkerStopping):
        services.job_raise_if_cancelled(job=job)


def test_an_interrupted_job_fails_unless_it_is_a_safe_kind_not_queued_again_yet(user, commits, queue):
    unsafe = running(user, "host-a")
    safe = running(user, "host-a", requeue_safe=True)
    assert recovery.job_interrupt(job=unsafe) == "failed"
    assert recovery.job_interrupt(job=safe) == "requeued"
    assert recovery.job_interrupt(job=unsafe) == ""  # it had already moved on
    commits.commit()
    assert WorkerCheck.objects.filter(pk=unsafe.pk).values_list("status", "message", "error").get() == (
        JobStatus.FAILED, "Interrupted: the worker stopped", "interrupted: the worker stopped")
    again = WorkerCheck.objects.get(pk=safe.pk)
    assert (again.status, again.requeues, again.message) == (
        JobStatus.QUEUED, 1, "Interrupted: the worker stopped; queued again")
    assert [t.id for t in task_broker().queued_tasks()] == [again.task_id]


def test_job_execute_turns_a_worker_stop_into_an_interrupted_job(user, queue):
    job = make_check(user)
    seen = []

    def body(job):
        reporter = jobkit.JobReporter(job)
        workerhost.stopping_set()  # SIGTERM reached the worker while the body ran
        try:
            reporter.raise_if_stopped()
        finally:
            seen.append(reporter.stop)
            workerhost.stopping_clear()

    jobkit.job_execute(model=WorkerCheck, pk=job.pk, body=body)
    job.refresh_from_db()
    assert isinstance(seen[0], services.WorkerStopping)
    assert (job.status, job.message) == (JobStatus.FAILED, "Interrupted: the worker stopped")


def test_a_job_handed_off_to_other_tasks_is_no_longer_its_instances(user, queue, settings):
    """A split sweep's chunks finish it on any host: the instance that split it may stop or die."""
    as_instance(settings, "host-a")
    job = make_check(user)

    def body(job):
        raise services.JobHandedOff()

    jobkit.job_execute(model=WorkerCheck, pk=job.pk, body=body)
    job.refresh_from_db()
    assert (job.status, job.worker_id) == (JobStatus.RUNNING, "")
    assert recovery.instance_jobs_interrupt(worker_id="host-a") == {"requeued": 0, "failed": 0}
    assert WorkerCheck.objects.get(pk=job.pk).status == JobStatus.RUNNING


def test_a_task_queued_under_its_previous_release_name_still_finds_its_job(user, monkeypatch):
    """During a rolling deploy a held task may name the task by the previous release's path."""
    from core.schedules import PREVIOUS_RELEASE_TASKS

    job = make_check(user)
    monkeypatch.setitem(PREVIOUS_RELEASE_TASKS, "core.tasks.worker_check_old", WorkerCheck.task_func)
    assert recovery.job_for_task({"func": "core.tasks.worker_check_old", "args": (job.pk,)}) == job
    assert recovery.job_for_task({"func": WorkerCheck.task_func, "args": (job.pk,)}) == job
    assert recovery.job_for_task({"func": "os.system", "args": (job.pk,)}) is None


def test_a_task_taken_while_the_worker_stops_does_not_start_and_is_queued_again(user, commits, queue, stopping):
    job = make_check(user)
    called = []
    jobkit.job_execute(model=WorkerCheck, pk=job.pk, body=called.append)
    commits.commit()
    job.refresh_from_db()
    assert called == [] and job.status == JobStatus.QUEUED and job.started_at is None
    assert [t.id for t in task_broker().queued_tasks()] == [job.task_id]


# --- one host acts at a time --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_one_of_two_recovery_loops_acts_at_a_time(monkeypatch):
    """Two hosts' loops at the same moment: one runs the pass, the other skips it (PostgreSQL: the advisory
    lock, each loop on its own connection; SQLite: the single host's lock)."""
    inside = threading.Event()
    release = threading.Event()
    acted = []

    def slow_pass(**kwargs):
        acted.append(threading.get_ident())
        inside.set()
        release.wait(10)
        return {"worker_lost": 0, "requeued": 0}

    monkeypatch.setattr(recovery, "jobs_recover", slow_pass)
    results = {}

    def loop(name):
        try:
            results[name] = workerhost.recovery_round()
        finally:
            connection.close()

    first = threading.Thread(target=loop, args=("first",))
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=loop, args=("second",))
    second.start()
    second.join(10)
    assert results["second"] is None  # skipped while the first acts
    release.set()
    first.join(10)
    assert results["first"] == {"worker_lost": 0, "requeued": 0} and len(acted) == 1
    # The lock is free again: the next round acts.
    release.set()
    third = threading.Thread(target=loop, args=("third",))
    third.start()
    third.join(10)
    assert results["third"] is not None and len(acted) == 2


@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_advisory_lock_is_what_decides(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    monkeypatch.setattr(recovery, "jobs_recover", lambda **kw: {"worker_lost": 0, "requeued": 0})
    key = workerhost.recovery_lock_key()
    held, done = threading.Event(), threading.Event()

    def other_host():
        from django.db import connection as own

        with own.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
        held.set()
        done.wait(10)
        own.close()  # its session ends: the lock goes with it

    thread = threading.Thread(target=other_host)
    thread.start()
    assert held.wait(10)
    try:
        assert workerhost.recovery_round() is None
    finally:
        done.set()
        thread.join(10)
    assert workerhost.recovery_round() == {"worker_lost": 0, "requeued": 0}
