"""The generic live stream of a job: replay from a sequence number, then doorbell or poll.

Domain consumers subclass `JobStreamConsumer` and override `get_job`,
`read_events` or `snapshot` when their events live in their own tables
(script log chunks, chat messages), keeping the same protocol:

  server → client  {"type": "status", "job": {...}}
                   {"type": "event", "seq": N, "kind": "...", "data": {...}}
                   {"type": "end"}      (the job has finished and everything was sent)
  client → server  {"type": "cancel"}   (owner or staff)

Connect with `?after=SEQ` to resume after the last event seen.
"""

from __future__ import annotations

import asyncio
import contextlib

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import close_old_connections

from core import services, ws_auth
from core.models import Job, JobEvent

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


def job_snapshot(job: Job) -> dict:
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "cancel_requested": job.cancel_requested,
        "finished": job.is_finished,
    }


class CredentialsMixin:
    """A websocket lives only as long as what authenticated it.

    Every consumer of a user joins the user's group (`credentials.revoked` closes it at
    once where the channel layer reaches), and the stream loops call `credentials_valid`
    on each poll, which closes them on any host and with the in-memory layer too: after
    a password change or reset, deactivation, deletion or role change, a revoked or
    expired token, or a logout.
    """

    async def websocket_connect(self, message):
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            self.groups = [*(self.groups or []), services.user_group(pk=user.pk)]
        await super().websocket_connect(message)

    async def credentials_revoked(self, event):
        await self.close(code=CLOSE_UNAUTHENTICATED)

    #: How often a socket whose stream has ended (it may stay open) re-checks its credentials.
    credentials_recheck_seconds = 1.0

    def credentials_valid(self) -> bool:
        """Sync (call from the loop's database read)."""
        return ws_auth.credentials_valid(self.scope.get("credentials"))

    def _credentials_valid_now(self) -> bool:
        close_old_connections()
        return self.credentials_valid()

    async def credentials_watch(self) -> None:
        """For a stream that has sent everything but stays open: close it when its credentials end."""
        while True:
            await asyncio.sleep(self.credentials_recheck_seconds)
            if not await database_sync_to_async(self._credentials_valid_now)():
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return


class JobStreamConsumer(CredentialsMixin, AsyncJsonWebsocketConsumer):
    #: Upper bound between two reads when no doorbell rings (in-memory layer
    #: cannot carry a worker's bell across processes).
    poll_interval = 0.25
    #: How many events one read sends at most.
    batch_size = 500

    # --- hooks for subclasses ---------------------------------------------------
    def get_job(self, user, **url_kwargs) -> Job | None:
        """Load the job named by the URL (`kind`, `pk`); None when unknown."""
        kind = url_kwargs.get("kind", "")
        for model in services.job_models():
            if model._meta.label_lower == kind:
                return model.objects.filter(pk=url_kwargs.get("pk")).first()
        return None

    def has_access(self, user, job: Job) -> bool:
        return job.owner_id == user.pk or (user.is_staff and job.staff_may_watch)

    def read_events(self, job: Job, after: int) -> list[dict]:
        """Events after `after`, oldest first, each a message with an integer `seq`."""
        rows = JobEvent.objects.filter(job_kind=job.kind, job_id=job.pk, seq__gt=after).order_by("seq")
        return [row.as_message() for row in rows[: self.batch_size]]

    def snapshot(self, job: Job) -> dict:
        return job_snapshot(job)

    def cancel(self, user, job: Job) -> None:
        services.job_cancel(job=job, by=user)

    # --- protocol -----------------------------------------------------------------
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        kwargs = self.scope["url_route"]["kwargs"]
        job = await database_sync_to_async(self.get_job)(user, **kwargs)
        if job is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        if not await database_sync_to_async(self.has_access)(user, job):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.job = job
        self.group = services.job_group(kind=job.kind, pk=job.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        query = dict(
            part.split("=", 1) for part in self.scope.get("query_string", b"").decode().split("&") if "=" in part
        )
        try:
            self.after = max(0, int(query.get("after", "0")))
        except ValueError:
            self.after = 0
        self.wake = asyncio.Event()
        self.last_status = None
        self.pump_task = asyncio.create_task(self.pump())

    async def disconnect(self, code):
        task = getattr(self, "pump_task", None)
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def doorbell(self, event):
        self.wake.set()

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "cancel":
            await database_sync_to_async(self.cancel)(self.scope["user"], self.job)
            self.wake.set()

    def _read(self) -> tuple[dict, list[dict]] | None:
        close_old_connections()
        if not self.credentials_valid():
            return None
        self.job.refresh_from_db()
        events = self.read_events(self.job, self.after)
        return self.snapshot(self.job), events

    async def pump(self):
        while True:
            self.wake.clear()
            read = await database_sync_to_async(self._read)()
            if read is None:
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
            status, events = read
            for message in events:
                await self.send_json(message)
                self.after = max(self.after, int(message["seq"]))
            if status != self.last_status:
                self.last_status = status
                await self.send_json({"type": "status", "job": status})
            if status.get("finished") and len(events) < self.batch_size:
                await self.send_json({"type": "end"})
                await self.credentials_watch()
                return
            if len(events) >= self.batch_size:
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.poll_interval)
