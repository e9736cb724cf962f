"""The chat's event log: every message is written first, with the session's next sequence number, and
the session's stream is rung after commit (core's append-and-ring helper), so websocket consumers in
any process pick it up."""

from __future__ import annotations

from analyzer.models import AnalysisSession, Answer, Message
from core import services as core_services


def message_add(*, session: AnalysisSession, kind: str, data: dict, answer: Answer | None = None,
                rows_kept: list | None = None) -> Message:
    """Append one message with the next sequence number of the session, then ring after commit."""
    message = Message(session=session, answer=answer, seq=0, kind=kind, data=data, rows_kept=rows_kept)
    message.full_clean(exclude=["session", "answer", "data", "rows_kept", "seq"])
    return core_services.stream_append(owner=session, rows=[message])[0]
