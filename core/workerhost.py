"""One worker cluster instance on its host: its id, its stop flag, its heartbeat and its recovery loop.

- The instance id is `settings.WORKER_ID`, or the host name and the process id of the cluster's main
  process; every process of the cluster (sentinel, pusher, workers, monitor) is forked from that main
  process and shares it. Cluster and queue names are the same on every host; this id tells them apart.
- The stop flag is set in every process of a stopping cluster (SIGTERM, `core.cluster`); job bodies
  see it through `core.services.job_stop` as `WorkerStopping`.
- The heartbeat (`WorkerHeartbeat`, a thread in the main process) says the instance lives, whether it
  reaches the broker, and which tasks it holds; with Redis it also writes a short-lived key saying
  whether it reaches the database, which the health probe reads when the database row goes stale.
- The recovery loop (a thread in the main process of every worker host, outside the task queue, so
  busy workers never delay it) runs `core.recovery.jobs_recover`; on PostgreSQL only the host holding
  the advisory lock acts, on SQLite the single host does.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import zlib
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

logger = logging.getLogger(__name__)

_instance = {"id": ""}
# Set from signal handlers: a plain flag, never a lock. A threading.Event's set() takes a lock, and a second
# SIGTERM arriving while the first handler holds it deadlocked the process for ever.
_stopping = {"set": False}
# On SQLite (one host) the loops of this process's threads still take turns.
_local_recovery = threading.Lock()

BROKER_TIMEOUT = 3.0


def instance_id() -> str:
    """This worker cluster instance's id (outside a cluster: this process's)."""
    return settings.WORKER_ID or _instance["id"] or f"{socket.gethostname()}:{os.getpid()}"


def instance_begin() -> str:
    """Fix the id in the cluster's main process, before it forks the cluster's processes."""
    _instance["id"] = settings.WORKER_ID or f"{socket.gethostname()}:{os.getpid()}"
    stopping_clear()
    return _instance["id"]


def worker_stopping() -> bool:
    return _stopping["set"]


def stopping_set() -> None:
    """Safe in a signal handler: one store, no lock."""
    _stopping["set"] = True


def stopping_clear() -> None:
    _stopping["set"] = False


def heartbeat_seconds() -> float:
    return max(0.5, min(5.0, settings.WORKER_STALE_SECONDS / 4))


# --- the heartbeat ----------------------------------------------------------------------------------


def broker_problem() -> str:
    """Why this process cannot reach the task broker right now ("" when it can).

    With Redis, a PING on a connection of its own with short timeouts, so a partitioned Redis is
    reported within seconds; the ORM broker lives in the database, which the heartbeat itself proves.
    """
    if not getattr(settings, "REDIS_URL", ""):
        return ""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=BROKER_TIMEOUT,
                                  socket_connect_timeout=BROKER_TIMEOUT)
    try:
        client.ping()
        return ""
    except redis.RedisError as exc:
        return f"cannot reach Redis: {exc}"[:300]
    finally:
        client.close()


def database_mark_key(worker_id: str) -> str:
    return f"{settings.Q_CLUSTER_NAME}:worker:{worker_id}"


def _database_mark(worker_id: str, problem: str) -> None:
    """With Redis: say for `3 × heartbeat` seconds whether this instance reaches the database."""
    if not getattr(settings, "REDIS_URL", ""):
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=BROKER_TIMEOUT,
                                  socket_connect_timeout=BROKER_TIMEOUT)
    try:
        client.set(database_mark_key(worker_id), json.dumps({
            "seen_at": timezone.now().isoformat(), "database_ok": not problem, "database_error": problem,
            "host": socket.gethostname(), "pid": os.getpid(),
        }), ex=max(10, int(heartbeat_seconds() * 6)))
    except redis.RedisError:
        pass
    finally:
        client.close()


def instance_beat(*, worker_id: str, begin: bool = False, state: str = "running") -> str:
    """One heartbeat of this instance; `begin` starts a new life (jobs begun before it are lost).
    Answers why it cannot reach the broker ("" when it can)."""
    from core.brokers import task_broker
    from core.models import WorkerHeartbeat
    from core.recovery import instance_held_prune

    problem = broker_problem()
    held = []
    if not problem:
        try:
            broker = task_broker()
            held = instance_held_prune(worker_id=worker_id, held=broker.held_tasks(worker_id), broker=broker)
        except Exception as exc:
            problem = f"cannot list held tasks: {exc}"[:300]
    now = timezone.now()
    defaults = {"pid": os.getpid(), "host": socket.gethostname(), "seen_at": now, "broker_ok": not problem,
                "broker_error": problem, "held": [entry.name or entry.id for entry in held][:200], "state": state}
    if begin:
        _instance["began"] = now
    # The start of this life, kept by the process: a row made again (deleted meanwhile) keeps it, so the
    # jobs this life runs are never taken for an earlier life's.
    began = _instance.get("began") or now
    defaults["started_at"] = began
    if begin:
        other = WorkerHeartbeat.objects.filter(
            name=worker_id, seen_at__gte=now - timedelta(seconds=settings.WORKER_STALE_SECONDS)
        ).exclude(host=defaults["host"]).values_list("host", flat=True).first()
        if other:
            logger.error("WORKER_ID %r is also used by host %s: give every worker host its own", worker_id, other)
    database_problem = ""
    try:
        row, created = WorkerHeartbeat.objects.update_or_create(name=worker_id, defaults=defaults)
        if created and row.started_at != began:  # `started_at` is set on creation: give it the life's start
            WorkerHeartbeat.objects.filter(pk=row.pk).update(started_at=began)
    except Exception as exc:
        database_problem = f"cannot reach the database: {exc}"[:300]
        raise
    finally:
        _database_mark(worker_id, database_problem)
    return problem


def instance_forget(*, worker_id: str) -> None:
    """A cleanly stopped instance leaves no heartbeat behind."""
    from core.models import WorkerHeartbeat

    WorkerHeartbeat.objects.filter(name=worker_id).delete()
    if getattr(settings, "REDIS_URL", ""):
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=BROKER_TIMEOUT,
                                      socket_connect_timeout=BROKER_TIMEOUT)
        try:
            client.delete(database_mark_key(worker_id))
        except redis.RedisError:
            pass
        finally:
            client.close()


# --- the recovery loop ------------------------------------------------------------------------------


def recovery_lock_key() -> int:
    """One advisory lock per deployment (its queue), as a signed 64-bit number."""
    from django_q.conf import Conf

    return zlib.crc32(f"platform-recovery:{Conf.CLUSTER_NAME}".encode()) - 2**31


def recovery_round() -> dict | None:
    """One recovery pass if this host may act now (None when another host holds the lock)."""
    from core.recovery import jobs_recover

    close_old_connections()
    if connection.vendor != "postgresql":
        if not _local_recovery.acquire(blocking=False):
            return None
        try:
            return jobs_recover()
        finally:
            _local_recovery.release()
    key = recovery_lock_key()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        if not cursor.fetchone()[0]:
            return None
    try:
        return jobs_recover()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


class HostThreads:
    """The main process's heartbeat and recovery loop threads (started with the cluster)."""

    def __init__(self, worker_id: str):
        self.worker_id = worker_id
        self.state = "starting"
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        # The first beat was written before the cluster forked; the first recovery pass runs at once.
        for name, first, every, beat in (
            ("worker-heartbeat", heartbeat_seconds(), heartbeat_seconds(),
             lambda: instance_beat(worker_id=self.worker_id, state=self.state)),
            ("worker-recovery", 0.0, settings.RECOVERY_INTERVAL_SECONDS, recovery_round),
        ):
            thread = threading.Thread(target=self._loop, args=(name, first, every, beat), daemon=True, name=name)
            thread.start()
            self.threads.append(thread)

    def _loop(self, name: str, first: float, every: float, beat) -> None:
        delay = first
        while not self.stopped.wait(delay):
            delay = every
            try:
                beat()
            except Exception:
                logger.warning("%s: round failed", name, exc_info=True)
                connection.close()
        connection.close()

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=5)
