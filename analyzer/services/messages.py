"""The chat's event log: every message is written first, with the session's next sequence number, and
the session's group is rung after commit, so websocket consumers (in any process) pick it up."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from analyzer.models import AnalysisSession, Answer, Message
from core import services as core_services


def session_group(*, session_id: int) -> str:
    """Channel-layer group of a session's chat: built from the id only."""
    return f"analyzer.session.{int(session_id)}"


def session_ring(*, session_id: int) -> None:
    group = session_group(session_id=session_id)
    transaction.on_commit(lambda: core_services.doorbell_ring(group=group))


def message_add(*, session: AnalysisSession, kind: str, data: dict, answer: Answer | None = None,
                rows_kept: list | None = None) -> Message:
    """Append one message with the next sequence number of the session, then ring after commit."""
    with transaction.atomic():
        AnalysisSession.objects.filter(pk=session.pk).update(event_seq=F("event_seq") + 1)
        seq = AnalysisSession.objects.filter(pk=session.pk).values_list("event_seq", flat=True).get()
        message = Message(session=session, answer=answer, seq=seq, kind=kind, data=data, rows_kept=rows_kept)
        message.full_clean(exclude=["session", "answer", "data", "rows_kept"])
        message.save()
        session.event_seq = seq
        session_ring(session_id=session.pk)
    return message
