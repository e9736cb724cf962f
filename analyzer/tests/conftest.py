"""Analyzer test helpers: a temporary MEDIA_ROOT, sample files, sessions created through the real services."""

from __future__ import annotations

import gzip
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from analyzer import services, tasks
from analyzer.models import AnalysisSession, Answer, Message

SAMPLE_CSV = (
    "date,symbol,side,qty,price\n"
    "2024-01-02,AAPL,buy,10,185.5\n"
    "2024-01-02,MSFT,sell,5,370.1\n"
    "2024-01-03,AAPL,sell,3,184.0\n"
    "2024-01-15,GOOG,buy,8,140.2\n"
    "2024-02-01,MSFT,buy,12,405.0\n"
    "2024-02-03,AAPL,buy,7,187.9\n"
    "2024-02-20,GOOG,sell,4,142.7\n"
    "2024-03-05,TSLA,buy,20,180.3\n"
    "2024-03-06,AAPL,sell,9,170.1\n"
    "2024-03-28,TSLA,sell,15,175.0\n"
)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def upload_of(name: str, content: bytes | str) -> SimpleUploadedFile:
    if isinstance(content, str):
        content = content.encode()
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def gz_bytes(text: str) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as fh:
        fh.write(text.encode())
    return buffer.getvalue()


def process(session) -> AnalysisSession:
    """Run the session's upload processing job the way the worker does; answer the session re-read."""
    tasks.processing_run(session.processing.pk)
    return AnalysisSession.objects.get(pk=session.pk)


def create_session(owner, name: str = "trades.csv", content: bytes | str = SAMPLE_CSV, *,
                   auto_analyze: bool = False) -> AnalysisSession:
    """Upload through the service and process the file (as the worker would): a ready session."""
    session = services.session_create_from_upload(owner=owner, upload=upload_of(name, content),
                                                   auto_analyze=auto_analyze)
    return process(session)


def run_pending_answers() -> None:
    """Run queued answers the way the worker does (through the django-q2 task function)."""
    for pk in Answer.objects.filter(status="queued").order_by("pk").values_list("pk", flat=True):
        tasks.answer_run(pk)


def ask(session, user, text: str) -> list[Message]:
    """Ask a question through the service, run the answer, return the messages of that answer."""
    answer = services.answer_request(session=session, user=user, text=text)
    tasks.answer_run(answer.pk)
    return list(Message.objects.filter(answer=answer).order_by("seq"))


@pytest.fixture
def trades_session(db, user):
    return create_session(user)

