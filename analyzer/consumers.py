"""The analyzer's live streams (core.streams).

`/ws/analyzer/sessions/<id>/?after=SEQ` — the chat of a session:
  client → server {"type": "message", "text"}, {"type": "auto_analyze"}, {"type": "stop"};
  server → client every persisted message as {"event", "seq", "data", …} (text, plot, query_result,
  status, done, error, session_update, and `user` for questions), replayed after `after` on connect,
  then whenever the session's doorbell rings or a short poll finds more. The stream is the session's
  message log: it spans many answers and never ends.

`/ws/analyzer/processings/<id>/?after=SEQ` — the upload processing job of a session (status snapshots
with progress/message/error, `stage` events, `end`); `{"type": "cancel"}` stops it.

`/ws/analyzer/answers/<id>/?after=SEQ` — one answer job.

Everything of a session is its owner's only, staff included (`selectors.*_get_for_viewer`): others get 4404.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError
from django.db import close_old_connections
from django.http import Http404

from analyzer import selectors, services
from analyzer.models import Answer
from core.streams import CLOSE_NOT_FOUND, JobStream, SequencedStream


class SessionChatStream(SequencedStream):
    app, kind = "analyzer", "sessions"
    batch_size = 200

    def load(self, user, pk):
        return selectors.session_get_for_viewer(user=user, pk=pk)

    def read_after(self, obj, after: int) -> list[dict]:
        return [m.as_event() for m in selectors.messages_after(session_id=obj.pk, after=after, limit=self.batch_size)]

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        try:
            if kind == "message":
                text = content.get("text")
                if not isinstance(text, str):
                    raise ValidationError({"text": "`text` must be a string."})
                analyst = content.get("analyst") or ""
                if not isinstance(analyst, str):
                    raise ValidationError({"analyst": "`analyst` must be a string."})
                await database_sync_to_async(self._request)(Answer.Mode.MESSAGE, text, analyst)
            elif kind == "auto_analyze":
                await database_sync_to_async(self._request)(Answer.Mode.AUTO_ANALYZE, "", "")
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

    def _request(self, mode: str, text: str, analyst: str) -> None:
        close_old_connections()
        session = selectors.session_get(user=self.scope["user"], pk=self.obj.pk)
        services.answer_request(session=session, user=self.scope["user"], mode=mode, text=text, analyst=analyst)

    def _stop(self) -> None:
        close_old_connections()
        session = selectors.session_get(user=self.scope["user"], pk=self.obj.pk)
        services.answer_stop(session=session, user=self.scope["user"])


class ProcessingStream(JobStream):
    app, kind = "analyzer", "processings"

    def load(self, user, pk):
        return selectors.processing_get_for_viewer(user=user, pk=pk)

    def cancel(self, user, job) -> None:
        services.processing_cancel(job=job, by=user)


class AnswerStream(JobStream):
    app, kind = "analyzer", "answers"

    def load(self, user, pk):
        return selectors.answer_get_for_viewer(user=user, pk=pk)

    def cancel(self, user, job) -> None:
        services.answer_stop(session=job.session, user=user)
