"""Where every queued task is: in the queue, or held by exactly one worker cluster instance.

A django-q2 cluster pulls tasks ahead of its free workers (its internal queue, plus one more waiting
in `put()`), so "not in the broker's list" never meant "lost". Here a worker takes a task off the
queue by moving it, in one atomic step, onto its own held list (`<queue>:held:<worker id>`): Redis
`BLMOVE`, or for the ORM broker one conditional UPDATE of the row's key. The task leaves the held list
when its result is acknowledged. So at every moment a task is in the queue, held by one named
instance, or finished, and the recovery pass can tell a live instance's prefetched tasks (left alone)
from a dead instance's (handed back to the queue).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from time import sleep
from typing import Any

from django.utils import timezone
from django_q.conf import Conf
from django_q.signing import BadSignature, SignedPackage

logger = logging.getLogger(__name__)

HELD = ":held:"


@dataclass
class HeldTask:
    """One task on a held list (or in the queue): `handle` is what the broker needs to move or drop it."""

    handle: Any
    task: dict

    @property
    def id(self) -> str:
        return str(self.task.get("id", ""))

    @property
    def name(self) -> str:
        return str(self.task.get("name", ""))


def _decode(payload) -> dict:
    try:
        task = SignedPackage.loads(payload)
    except (TypeError, BadSignature, ValueError):
        return {}
    return task if isinstance(task, dict) else {}


def current_worker_id() -> str:
    from core.workerhost import instance_id

    return instance_id()


class HeldRedisMixin:
    """Redis: `BLMOVE queue → held list`; the result's acknowledgement removes it from the held list."""

    def held_key(self, worker_id: str | None = None) -> str:
        return f"{self.list_key}{HELD}{worker_id or current_worker_id()}"

    def dequeue(self):
        raw = self.connection.blmove(self.list_key, self.held_key(), 1, "LEFT", "RIGHT")
        if raw:
            # The raw payload is the acknowledgement id: it names the held list's entry.
            return [(raw, raw)]
        return None

    def acknowledge(self, task_id):
        if task_id:
            self.connection.lrem(self.held_key(), 1, task_id)

    def fail(self, task_id):
        self.acknowledge(task_id)

    def queued_tasks(self) -> list[HeldTask]:
        return [HeldTask(raw, _decode(raw)) for raw in self.connection.lrange(self.list_key, 0, -1)]

    def held_tasks(self, worker_id: str) -> list[HeldTask]:
        return [HeldTask(raw, _decode(raw)) for raw in self.connection.lrange(self.held_key(worker_id), 0, -1)]

    def holders(self) -> set[str]:
        prefix = f"{self.list_key}{HELD}"
        return {key.decode()[len(prefix):] for key in self.connection.scan_iter(match=f"{prefix}*", count=500)}

    def held_release(self, worker_id: str, held: HeldTask) -> bool:
        """Move one held task back to the head of the queue (it runs next), atomically."""
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.lrem(self.held_key(worker_id), 1, held.handle)
            pipe.lpush(self.list_key, held.handle)
            removed, _ = pipe.execute()
        if not removed:  # someone else moved it meanwhile: undo the push
            self.connection.lrem(self.list_key, 1, held.handle)
        return bool(removed)

    def held_drop(self, worker_id: str, held: HeldTask) -> None:
        self.connection.lrem(self.held_key(worker_id), 1, held.handle)


class HeldORMMixin:
    """The ORM broker: a row is taken by changing its key to the held list's, in one conditional UPDATE."""

    def held_key(self, worker_id: str | None = None) -> str:
        # OrmQ.key holds 100 characters.
        return f"{self.list_key}{HELD}{worker_id or current_worker_id()}"[:100]

    def dequeue(self):
        rows = self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())[0:Conf.BULK]
        taken = []
        for row in rows:
            if self.get_connection().filter(id=row.id, key=self.list_key, lock=row.lock).update(
                key=self.held_key(), lock=timezone.now() + timedelta(seconds=Conf.RETRY)
            ):
                taken.append((row.pk, row.payload))
        if taken:
            return taken
        sleep(Conf.POLL)
        return None

    def queued_tasks(self) -> list[HeldTask]:
        return [HeldTask(pk, _decode(payload))
                for pk, payload in self.get_connection().filter(key=self.list_key).values_list("pk", "payload")]

    def held_tasks(self, worker_id: str) -> list[HeldTask]:
        return [HeldTask(pk, _decode(payload)) for pk, payload in
                self.get_connection().filter(key=self.held_key(worker_id)).values_list("pk", "payload")]

    def holders(self) -> set[str]:
        prefix = f"{self.list_key}{HELD}"
        keys = self.get_connection().filter(key__startswith=prefix).values_list("key", flat=True).distinct()
        return {key[len(prefix):] for key in keys}

    def held_release(self, worker_id: str, held: HeldTask) -> bool:
        return bool(self.get_connection().filter(pk=held.handle, key=self.held_key(worker_id)).update(
            key=self.list_key, lock=timezone.now() - timedelta(seconds=1)))

    def held_drop(self, worker_id: str, held: HeldTask) -> None:
        self.get_connection().filter(pk=held.handle, key=self.held_key(worker_id)).delete()


def task_broker():
    """The configured broker (the platform's classes, `core.schedules`)."""
    from django_q.brokers import get_broker

    return get_broker()
