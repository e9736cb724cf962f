"""The platform's one live-stream mechanism: replay from a sequence number, then doorbell or poll.

Every websocket of the platform is a subclass of `StreamConsumer`, routed at
`/ws/<app>/<kind>/<id>/` (`stream_route`). The database is the record: writers append
rows with the next sequence numbers and ring the stream's group after commit
(`core.services.stream_append`, `core.services.stream_group`). The consumer

1. authenticates (core.ws_auth set `scope["user"]`: session cookie, `Authorization`
   header, or the subprotocols `platform.v1` + `token.KEY`; foreign origins were refused),
2. loads its object through the object's visibility selector — the same one the pages and
   the API use — and closes 4404 when the viewer may not see it (or it does not exist),
3. joins the object's group, accepts, and replays everything after `?after=SEQ`,
4. then waits for the doorbell or `poll_interval` (≤ 1 s) and reads again, re-checking the
   connection's credentials and the object's visibility on every read.

`SequencedStream` is the stream of one object: hooks `load` (the visibility selector),
`read_after` (items after a sequence number), `snapshot` (the object's state, sent when it
changes) and `is_finished`. `JobStream` is a job's stream (status snapshots, events,
`end`, cancel over the socket). A stream of several objects (ETL job rows) subclasses
`StreamConsumer` and implements `read` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import close_old_connections
from django.urls import re_path

from core import services, ws_auth

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


# --- paths ---------------------------------------------------------------------------


def stream_path(*, app: str, kind: str, pk: int | None = None) -> str:
    """The websocket path of a stream: `/ws/<app>/<kind>/<id>/` (`/ws/<app>/<kind>/` for a collection)."""
    return f"/ws/{app}/{kind}/" if pk is None else f"/ws/{app}/{kind}/{int(pk)}/"


def stream_route(consumer: type[StreamConsumer]):
    """The URL pattern of a stream consumer, from its `app` and `kind` (and `collection`)."""
    tail = "" if consumer.collection else r"(?P<pk>\d+)/"
    return re_path(rf"^ws/{consumer.app}/{consumer.kind}/{tail}$", consumer.as_asgi())


def query_params(scope) -> dict[str, list[str]]:
    """The websocket's query string (the only parser of it)."""
    try:
        return parse_qs(scope.get("query_string", b"").decode("latin1"), max_num_fields=50)
    except ValueError:
        return {}


def after_param(scope) -> int:
    """`?after=SEQ`: the last sequence number the client has seen (0 when absent or not a number)."""
    value = (query_params(scope).get("after") or ["0"])[0]
    return max(0, int(value)) if value.isdigit() and len(value) < 19 else 0


# --- credentials ------------------------------------------------------------------------


class CredentialsMixin:
    """A websocket lives only as long as what authenticated it.

    Every consumer of a user joins the user's group (`credentials.revoked` closes it at
    once where the channel layer reaches), and the stream loop calls `credentials_valid`
    on each read, which closes it on any host and with the in-memory layer too: after
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


# --- the loop --------------------------------------------------------------------------------


@dataclass
class Read:
    """What one read found: messages to send, whether more are waiting, whether the stream is finished."""

    messages: list[dict] = field(default_factory=list)
    more: bool = False
    finished: bool = False


class StreamConsumer(CredentialsMixin, AsyncJsonWebsocketConsumer):
    """The loop every stream shares. Subclasses set `app`/`kind` and implement `open` and `read`."""

    #: The path parts of `/ws/<app>/<kind>/<id>/`.
    app = ""
    kind = ""
    #: True for a stream of several objects (`/ws/<app>/<kind>/?ids=…`), with no id in the path.
    collection = False
    #: Upper bound between two reads when no doorbell rings (the in-memory layer cannot carry a
    #: worker's bell across processes).
    poll_interval = 0.25
    #: After `end`, stop reading (and only watch the credentials) or go on reading (a collection
    #: picks up jobs re-run or watched later).
    read_after_end = False

    @classmethod
    def path(cls, pk: int | None = None) -> str:
        """This stream's websocket path, for the pages and the API that hand it out."""
        return stream_path(app=cls.app, kind=cls.kind, pk=pk)

    # --- hooks (sync: they run in a database thread) ---
    def open(self, user) -> int | None:
        """Load what the stream shows for `user` (the visibility selector); a close code to refuse."""
        raise NotImplementedError

    def stream_groups(self) -> list[str]:
        """The channel-layer groups whose doorbell wakes this stream."""
        return []

    def read(self) -> Read | int:
        """Read what is new since the last read; a close code to end the socket."""
        raise NotImplementedError

    def sent(self, message: dict) -> None:
        """Called after each message is sent (a sequenced stream moves its `after`)."""

    # --- protocol ---
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.wake = asyncio.Event()
        self.ended = False
        self.joined: list[str] = []
        refused = await database_sync_to_async(self._open)(user)
        if refused:
            await self.close(code=refused)
            return
        await self.join(self.stream_groups())
        await self.accept()
        self.pump_task = asyncio.create_task(self._pump())

    def _open(self, user) -> int | None:
        close_old_connections()
        return self.open(user)

    async def join(self, groups: list[str]) -> None:
        for group in groups:
            if group not in self.joined:
                self.joined.append(group)
                await self.channel_layer.group_add(group, self.channel_name)

    async def disconnect(self, code):
        task = getattr(self, "pump_task", None)
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def doorbell(self, event):
        self.wake.set()

    def _read(self) -> Read | int:
        close_old_connections()
        if not self.credentials_valid():
            return CLOSE_UNAUTHENTICATED
        return self.read()

    async def _pump(self):
        while True:
            self.wake.clear()
            result = await database_sync_to_async(self._read)()
            if isinstance(result, int):  # a close code
                await self.close(code=result)
                return
            for message in result.messages:
                await self.send_json(message)
                self.sent(message)
            if result.more:
                continue
            if result.finished and not self.ended:
                await self.send_json({"type": "end"})
                self.ended = True
                if not self.read_after_end:
                    await self.credentials_watch()
                    return
            elif not result.finished:
                self.ended = False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.poll_interval)

    def restart(self) -> None:
        """Wake the loop now, and start it again if it had stopped (a collection watching new objects)."""
        self.wake.set()
        task = getattr(self, "pump_task", None)
        if task is None or task.done():
            self.pump_task = asyncio.create_task(self._pump())


class SequencedStream(StreamConsumer):
    """The stream of one object: replay after `?after=SEQ`, then what follows, with state snapshots.

      server → client  every item after the client's sequence number, oldest first, each with `seq`;
                       {"type": "status", "job": {...}} when the snapshot changes (if the stream has one);
                       {"type": "end"} once the object is finished and everything was sent.
    """

    #: How many items one read sends at most.
    batch_size = 500

    # --- hooks ---
    def load(self, user, pk):
        """The object for this viewer (its visibility selector); None when unknown or not visible."""
        raise NotImplementedError

    def read_after(self, obj, after: int) -> list[dict]:
        """At most `batch_size` items after `after`, oldest first, each a message with an integer `seq`."""
        return []

    def snapshot(self, obj) -> dict | None:
        """The object's state, sent as a `status` message when it changes; None for no status messages."""
        return None

    def is_finished(self, obj) -> bool:
        """Nothing more will be appended (then `end` is sent once everything was read)."""
        return False

    # --- the protocol on top of the loop ---
    def open(self, user) -> int | None:
        self.after = after_param(self.scope)
        self.last_status = None
        self.obj = self.load(user, self.scope["url_route"]["kwargs"]["pk"])
        return CLOSE_NOT_FOUND if self.obj is None else None

    def stream_groups(self) -> list[str]:
        return [services.stream_group(kind=self.obj._meta.label_lower, pk=self.obj.pk)]

    def read(self) -> Read | int:
        obj = self.load(self.scope["user"], self.obj.pk)
        if obj is None:  # deleted meanwhile, or no longer visible to this viewer
            return CLOSE_NOT_FOUND
        self.obj = obj
        items = self.read_after(obj, self.after)
        messages = list(items)
        status = self.snapshot(obj)
        if status is not None and status != self.last_status:
            self.last_status = status
            messages.append({"type": "status", "job": status})
        more = len(items) >= self.batch_size
        return Read(messages=messages, more=more, finished=not more and self.is_finished(obj))

    def sent(self, message: dict) -> None:
        if message.get("seq") is not None and message.get("type") != "status":
            self.after = max(self.after, int(message["seq"]))


def job_snapshot(job) -> dict:
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


class JobStream(SequencedStream):
    """A job's stream:

      server → client  {"type": "status", "job": {...}}
                       {"type": "event", "seq": N, "kind": "...", "data": {...}}
                       {"type": "end"}      (the job has finished and everything was sent)
                       {"type": "error", "error": "..."}   (a refused cancel)
      client → server  {"type": "cancel"}   (the job's `cancel` service decides who may)
    """

    def read_after(self, obj, after: int) -> list[dict]:
        from core.models import JobEvent

        rows = JobEvent.objects.filter(job_kind=obj.kind, job_id=obj.pk, seq__gt=after).order_by("seq")
        return [row.as_message() for row in rows[: self.batch_size]]

    def snapshot(self, obj) -> dict:
        return job_snapshot(obj)

    def is_finished(self, obj) -> bool:
        return obj.is_finished

    def cancel(self, user, job) -> None:
        """Ask the job to stop through its domain's service (which checks who may)."""
        services.job_cancel(job=job, by=user)

    def _cancel(self) -> str:
        close_old_connections()
        try:
            self.cancel(self.scope["user"], self.obj)
        except PermissionDenied as exc:
            return str(exc) or "Not allowed."
        except ValidationError as exc:
            return " ".join(exc.messages) or "Not allowed."
        return ""

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "cancel":
            refused = await database_sync_to_async(self._cancel)()
            if refused:
                await self.send_json({"type": "error", "error": refused})
            self.wake.set()

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            await super().receive(text_data=text_data, bytes_data=bytes_data, **kwargs)
        except ValueError:  # not JSON
            await self.send_json({"type": "error", "error": "Messages must be JSON objects."})
