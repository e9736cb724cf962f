"""The chat websocket of a session: `/ws/analyzer/sessions/<id>/?after=SEQ`.

Client → server: {"type": "message", "text"}, {"type": "auto_analyze"}, {"type": "stop"}.
Server → client: every persisted message as {"event", "seq", "data", …} (text, plot,
query_result, status, done, error, session_update, and `user` for questions), replayed
after `after` on connect, then whenever the session's doorbell rings or a short poll
finds more. Same pattern as core.consumers.JobStreamConsumer, but the stream is the
session's message log (it spans many answers and never "ends").
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import ValidationError
from django.db import close_old_connections
from django.http import Http404

from analyzer import selectors, services
from analyzer.models import Answer
from core.consumers import CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED, CredentialsMixin, JobStreamConsumer


class SessionChatConsumer(CredentialsMixin, AsyncJsonWebsocketConsumer):
    poll_interval = 0.25
    batch_size = 200

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        pk = self.scope["url_route"]["kwargs"]["pk"]
        session = await database_sync_to_async(selectors.session_get_for_owner)(user=user, pk=pk)
        if session is None:  # unknown or someone else's: the same answer
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.session = session
        self.group = services.session_group(session_id=session.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            self.after = max(0, int(query.get("after", ["0"])[0]))
        except ValueError:
            self.after = 0
        self.wake = asyncio.Event()
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
        kind = content.get("type") if isinstance(content, dict) else None
        try:
            if kind == "message":
                text = content.get("text")
                if not isinstance(text, str):
                    raise ValidationError({"text": "`text` must be a string."})
                await database_sync_to_async(self._request)(Answer.Mode.MESSAGE, text)
            elif kind == "auto_analyze":
                await database_sync_to_async(self._request)(Answer.Mode.AUTO_ANALYZE, "")
            elif kind == "stop":
                await database_sync_to_async(self._stop)()
            else:
                raise ValidationError({"type": "Unknown message type: use message, auto_analyze or stop."})
        except Http404:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        except ValidationError as exc:
            messages = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
            text = " ".join(m for values in messages.values() for m in values)
            # Not persisted: a refusal concerns this client only and starts no answer.
            await self.send_json({"event": "error", "seq": None, "data": {"message": text, "rejected": True}})
        self.wake.set()

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            await super().receive(text_data=text_data, bytes_data=bytes_data, **kwargs)
        except ValueError:  # not JSON
            await self.send_json({"event": "error", "seq": None,
                                  "data": {"message": "Messages must be JSON objects.", "rejected": True}})

    def _request(self, mode: str, text: str) -> None:
        close_old_connections()
        session = selectors.session_get(user=self.scope["user"], pk=self.session.pk)
        services.answer_request(session=session, user=self.scope["user"], mode=mode, text=text)

    def _stop(self) -> None:
        close_old_connections()
        session = selectors.session_get(user=self.scope["user"], pk=self.session.pk)
        services.answer_stop(session=session, user=self.scope["user"])

    def _read(self) -> list[dict] | int:
        close_old_connections()
        if not self.credentials_valid():
            return CLOSE_UNAUTHENTICATED
        if selectors.session_get_for_owner(user=self.scope["user"], pk=self.session.pk) is None:
            return CLOSE_NOT_FOUND  # deleted meanwhile
        return [m.as_event() for m in selectors.messages_after(session_id=self.session.pk, after=self.after,
                                                               limit=self.batch_size)]

    async def pump(self):
        while True:
            self.wake.clear()
            events = await database_sync_to_async(self._read)()
            if isinstance(events, int):  # a close code
                await self.close(code=events)
                return
            for message in events:
                await self.send_json(message)
                self.after = max(self.after, int(message["seq"]))
            if len(events) >= self.batch_size:
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.poll_interval)


class SessionProcessingConsumer(JobStreamConsumer):
    """`/ws/analyzer/sessions/<id>/processing/?after=SEQ`: the live progress of the session's upload processing.

    core's generic job stream (status snapshots with progress/message/error, `stage` events, `end`),
    reached through the session and limited to its owner — like everything of a session, staff
    included, another user gets 4404 (the generic `/ws/jobs/analyzer.processing/<pk>/` also works).
    Client → server `{"type": "cancel"}` stops the processing.
    """

    def get_job(self, user, **url_kwargs):
        return selectors.processing_get(user=user, session_pk=url_kwargs.get("pk"))

    def has_access(self, user, job) -> bool:
        return job.owner_id == user.pk

    def cancel(self, user, job) -> None:
        services.processing_cancel(job=job, by=user)
