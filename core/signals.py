"""The recovery pass's signals, and the worker start hooks (heartbeat of the worker process, a recovery pass).

Apps connect their recovery work in `AppConfig.ready()`, so no model has to import its services:
- `job_worker_lost` (sender: the Job model, `job`): the pass has just failed this running job because its
  worker stopped heartbeating; clean up what the job left behind.
- `jobs_recovered` (no sender): a recovery pass ended; e.g. hand out slots a dead worker left free.
"""

import logging
import os
import socket
import threading

from django.conf import settings
from django.db import connection
from django.db.models.signals import post_migrate
from django.dispatch import Signal, receiver
from django.utils import timezone
from django_q.signals import post_spawn

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 5.0

job_worker_lost = Signal()
jobs_recovered = Signal()


BROKER_TIMEOUT = 3.0


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


def _beat_forever(name: str) -> None:
    from core.models import WorkerHeartbeat

    stop = threading.Event()
    while True:
        try:
            problem = broker_problem()
            WorkerHeartbeat.objects.update_or_create(
                name=name, defaults={"pid": os.getpid(), "host": socket.gethostname(), "seen_at": timezone.now(),
                                     "broker_ok": not problem, "broker_error": problem}
            )
        except Exception:
            logger.warning("worker heartbeat failed", exc_info=True)
        finally:
            connection.close()
        stop.wait(HEARTBEAT_INTERVAL)


@receiver(post_spawn)
def on_worker_spawn(sender, proc_name, **kwargs):
    from django_q.conf import Conf

    from core.services import jobs_recover

    if Conf.SYNC:  # tasks run inline in the caller: not a worker process
        return

    name = f"{socket.gethostname()}:{os.getpid()}"
    threading.Thread(target=_beat_forever, args=(name,), daemon=True, name="worker-heartbeat").start()
    try:
        jobs_recover()
    except Exception:
        logger.warning("recovery at worker start failed", exc_info=True)
    finally:
        connection.close()


@receiver(post_migrate)
def ensure_schedules(sender, **kwargs):
    if getattr(sender, "name", "") != "core":
        return
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="core: recover stalled jobs",
        defaults={
            "func": "core.tasks.jobs_recover",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    Schedule.objects.filter(name="core: prune worker heartbeats").delete()
    if settings.DEBUG:
        logger.debug("schedules ensured")
