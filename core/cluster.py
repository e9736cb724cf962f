"""The platform's worker cluster: django-q2's Cluster and Sentinel with a clean stop, an instance
heartbeat and the recovery loop (`core.workerhost`). `manage.py qcluster` runs it (core's command).

django-q2 1.11.1 deadlocks on a SIGTERM to the cluster's whole process group (what systemd and
`kill -TERM -- -PGID` send): its Sentinel keeps SIGTERM's default action and dies, while the main
process blocks for ever in the stop event's `Condition.notify`, waiting for the dead sentinel. Here:

- every process under the main one (sentinel, pusher, monitor, workers) catches SIGTERM only to set the
  stop flag, a plain store (a handler that took a lock deadlocked when a second SIGTERM arrived inside
  it); the sentinel passes it on to its workers (for a SIGTERM sent to the main process only), the
  pusher takes no new task, and the main process drives the stop;
- the sentinel's stop never waits out a running job: bodies see `WorkerStopping` and end their jobs
  interrupted (a safe kind is queued again once), tasks prefetched in the internal queue are not
  started, and whatever still runs after `WORKER_STOP_SECONDS` is killed;
- then the main process interrupts the jobs still marked running under its instance id, hands its held
  tasks back to the queue, so another instance runs them, and removes its heartbeat.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
import uuid

from django import db
from django.conf import settings
from django_q.cluster import Cluster, Sentinel, get_mp_context
from django_q.conf import setproctitle
from django_q.status import Stat

from core import workerhost

logger = logging.getLogger(__name__)


def _signal(pid: int | None, sig: int) -> None:
    if not pid:
        return
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and everything under it (a job's sandbox, a sweep's pool)."""
    import psutil

    try:
        root = psutil.Process(pid)
        victims = root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        return
    for victim in victims:
        try:
            victim.kill()
        except psutil.NoSuchProcess:
            pass


def _wait(predicate, seconds: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + max(0.0, seconds)
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


class PlatformSentinel(Sentinel):
    def __init__(self, stop_event, start_event, cluster_id, broker=None, timeout=None, start=True):
        super().__init__(stop_event, start_event, cluster_id, broker, timeout, start=False)
        # A Python handler, not SIG_IGN: every process forked from here keeps it (so none dies on the
        # group's SIGTERM), and a program a job starts gets SIGTERM's default action back at exec.
        signal.signal(signal.SIGTERM, self._on_sigterm)
        if start:
            self.start()

    def _on_sigterm(self, signum, frame) -> None:
        pid = os.getpid()
        if pid != self.pid and os.getppid() != self.pid:
            # A process a job forked (a sweep's pool…) inherited this handler: there SIGTERM keeps its
            # default meaning, so the job can still terminate its own children.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(pid, signal.SIGTERM)
            return
        first = not workerhost.worker_stopping()
        workerhost.stopping_set()
        if first and os.getpid() == self.pid:  # the sentinel itself: tell its workers
            for process in list(self.pool):
                _signal(process.pid, signal.SIGTERM)

    def stop(self) -> None:
        deadline = time.monotonic() + settings.WORKER_STOP_SECONDS
        workerhost.stopping_set()
        for process in list(self.pool):
            _signal(process.pid, signal.SIGTERM)
        # No new task: the pusher stops (or is killed: a task it took is on the held list either way).
        self.event_out.set()
        if not _wait(lambda: not self.pusher.is_alive(), 0.5):
            self.pusher.kill()
            self.pusher.join(1)
        # Tasks prefetched in the internal queue are not started; the main process hands them back.
        try:
            while True:
                self.task_queue.get_nowait()
        except (queue.Empty, OSError, EOFError, ValueError):
            pass
        for _ in self.pool:
            try:
                self.task_queue.put("STOP", timeout=0.5)
            except (queue.Full, ValueError, OSError):
                break
        # Running bodies see WorkerStopping and end their jobs; past the deadline the rest is killed.
        if not _wait(lambda: not any(p.is_alive() for p in self.pool), deadline - time.monotonic(), 0.1):
            for process in self.pool:
                if process.is_alive():
                    logger.warning("worker %s did not stop in %s s: killed", process.pid, settings.WORKER_STOP_SECONDS)
                    _kill_tree(process.pid)
        for process in self.pool:
            process.join(1)
        self.pool = []
        try:
            self.result_queue.put("STOP", timeout=0.5)
        except (queue.Full, ValueError, OSError):
            pass
        if not _wait(lambda: not self.monitor.is_alive(), 2.0):
            self.monitor.kill()
            self.monitor.join(1)
        for q in (self.task_queue, self.result_queue):
            q.cancel_join_thread()
        try:
            Stat(self).save()
        except Exception:
            logger.debug("last status not saved", exc_info=True)


class PlatformCluster(Cluster):
    """The main process of one worker cluster instance."""

    def __init__(self, broker=None):
        super().__init__(broker)
        self.worker_id = workerhost.instance_begin()
        self.stop_requested = False
        self.host_threads: workerhost.HostThreads | None = None

    def sig_handler(self, signum, frame) -> None:
        # Only note it here: `run()` drives the stop from the main thread, never from a handler.
        self.stop_requested = True
        workerhost.stopping_set()
        if self.sentinel is not None:
            _signal(self.sentinel.pid, signal.SIGTERM)

    def start(self) -> int:
        # The first beat starts this instance's life before any of its workers can start a job. Until the
        # broker answers, the instance waits, beating: health shows it down and says why.
        begin = True
        while (workerhost.instance_beat(worker_id=self.worker_id, begin=begin, state="starting")
               and not self.stop_requested):
            begin = False
            time.sleep(workerhost.heartbeat_seconds())
        db.connections.close_all()
        if self.stop_requested:
            return self.pid
        if setproctitle:
            setproctitle.setproctitle(f"qcluster main {self.name}")
        self.stop_event = get_mp_context().Event()
        self.start_event = get_mp_context().Event()
        self.sentinel = get_mp_context().Process(
            target=PlatformSentinel, name=f"Process-{uuid.uuid4().hex}",
            args=(self.stop_event, self.start_event, self.cluster_id, self.broker, self.timeout),
        )
        self.sentinel.start()
        logger.info("Q Cluster %s (worker %s) starting.", self.name, self.worker_id)
        # Threads only after the fork: a forked process inherits no running thread's locks.
        self.host_threads = workerhost.HostThreads(self.worker_id)
        self.host_threads.start()
        while self.start_event and not self.start_event.is_set():
            if not self.sentinel.is_alive():
                if self.stop_requested:
                    break
                raise RuntimeError(f"Q Cluster {self.name} failed to start: sentinel exited "
                                   f"with code {self.sentinel.exitcode}")
            time.sleep(0.1)
        if self.start_event is not None and self.start_event.is_set():
            self.host_threads.state = "running"
            workerhost.instance_beat(worker_id=self.worker_id, state="running")
            db.connections.close_all()
        return self.pid

    def run(self) -> int:
        """Start, run until SIGTERM/SIGINT (or until the sentinel dies), stop. The exit status."""
        try:
            self.start()
        except Exception:
            self.stop(clean=False)
            raise
        while not self.stop_requested and self.sentinel is not None and self.sentinel.is_alive():
            time.sleep(0.2)
        died = not self.stop_requested and self.sentinel is not None
        if died:
            logger.error("Q Cluster %s: the sentinel exited with %s", self.name, self.sentinel.exitcode)
        self.stop(clean=not died)
        return 1 if died else 0

    def stop(self, *, clean: bool = True) -> bool:
        """Stop the cluster (see the module's docstring). A clean stop removes the heartbeat; after a
        failure it is left to go stale, so health says the instance is down."""
        import psutil

        workerhost.stopping_set()
        if self.host_threads is not None:
            self.host_threads.state = "stopping"
        try:
            ours = psutil.Process().children(recursive=True)
        except psutil.Error:
            ours = []
        if self.sentinel is not None and self.sentinel.is_alive():
            logger.info("Q Cluster %s stopping.", self.name)
            # multiprocessing's Event.set() waits, without a timeout, for every process asleep in wait() to
            # wake: a sentinel that cannot (killed, stuck) would hold the stop for ever. The join bounds it.
            threading.Thread(target=self.stop_event.set, daemon=True, name="worker-stop").start()
            self.sentinel.join(settings.WORKER_STOP_SECONDS + 4)
            if self.sentinel.is_alive():
                logger.warning("the sentinel did not stop in time: killed")
                _kill_tree(self.sentinel.pid)
                self.sentinel.join(2)
        for process in ours:  # what a dead sentinel left behind
            try:
                process.kill()
            except psutil.Error:
                pass
        if self.host_threads is not None:
            self.host_threads.stop()
        try:
            db.close_old_connections()
            interrupted = workerhost_end(self.worker_id, forget=clean)
            logger.info("Q Cluster %s has stopped: %s", self.name, interrupted)
        finally:
            db.connections.close_all()
        self.start_event = None
        self.stop_event = None
        return True


def workerhost_end(worker_id: str, *, forget: bool = True) -> dict:
    """What a stopping instance leaves in order: its running jobs interrupted, held tasks handed back,
    no heartbeat (`forget`)."""
    from core import recovery

    counts = recovery.instance_jobs_interrupt(worker_id=worker_id)
    try:
        counts["handed_back"] = recovery.instance_held_release(worker_id=worker_id)
    except Exception:
        logger.warning("could not hand held tasks back (the recovery pass will)", exc_info=True)
    if forget:
        workerhost.instance_forget(worker_id=worker_id)
    return counts

