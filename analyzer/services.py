"""Analyzer writes: sessions from uploads, chat messages (the event log), answers (agent jobs), deletion.

Every message is written to the database first and the session's group is
rung after commit, so websocket consumers (in any process) pick it up.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F

from analyzer import conf
from analyzer.agent.base import Provider, ProviderError
from analyzer.agent.context import DataContext
from analyzer.agent.loop import AgentLoop, AnswerStopped
from analyzer.agent.tools import AUTO_ANALYSIS_PROMPT, SYSTEM_PROMPT
from analyzer.ingest import IngestError, file_extension, ingest
from analyzer.models import AnalysisSession, Answer, Message
from core import services as core_services
from core.models import JobStatus

logger = logging.getLogger(__name__)

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def session_group(*, session_id: int) -> str:
    """Channel-layer group of a session's chat: built from the id only."""
    return f"analyzer.session.{int(session_id)}"


def session_ring(*, session_id: int) -> None:
    group = session_group(session_id=session_id)
    transaction.on_commit(lambda: core_services.doorbell_ring(group=group))


def session_data_path(*, session: AnalysisSession) -> str:
    return default_storage.path(session.data_name)


# --- sessions ---------------------------------------------------------------------------


def _remove_folder(folder: str) -> None:
    if not folder:
        return
    try:
        shutil.rmtree(default_storage.path(folder), ignore_errors=True)
    except NotImplementedError:  # remote storage: delete what is listed
        _, files = default_storage.listdir(folder)
        for name in files:
            default_storage.delete(f"{folder}/{name}")


def session_create_from_upload(*, owner, upload, auto_analyze: bool = True) -> AnalysisSession:
    """Validate and process an uploaded file, create its session and (optionally) start the auto-analysis."""
    filename = os.path.basename(str(getattr(upload, "name", "") or "")).strip()[:255]
    if not filename:
        raise ValidationError({"file": "The file has no name."})
    ext = file_extension(filename)
    if ext is None:
        raise ValidationError({"file": "Unsupported file type: upload a .csv, .csv.gz, .parquet or .pq file."})
    size = int(getattr(upload, "size", 0) or 0)
    if size == 0:
        raise ValidationError({"file": "The file is empty."})
    if size > conf.MAX_UPLOAD_BYTES:
        raise ValidationError({"file": f"The file is too large ({size:,} bytes); the limit is "
                                       f"{conf.MAX_UPLOAD_BYTES:,} bytes."})
    folder = f"{conf.STORAGE_PREFIX}/{uuid.uuid4().hex}"
    data_name = f"{folder}/data.duckdb"
    original_name = ""
    started = time.monotonic()
    try:
        temp_path = getattr(upload, "temporary_file_path", None)
        if temp_path is not None and not conf.KEEP_ORIGINAL:
            # Large uploads already sit in a temporary file: read it in place, no copy.
            src = temp_path()
        else:
            original_name = default_storage.save(f"{folder}/original{ext}", upload)
            src = default_storage.path(original_name)
        result = ingest(src=src, filename=filename, data_dst=default_storage.path(data_name))
        if original_name and not conf.KEEP_ORIGINAL:
            default_storage.delete(original_name)
            original_name = ""
    except IngestError as exc:
        _remove_folder(folder)
        raise ValidationError({"file": str(exc)}) from None
    except BaseException:
        _remove_folder(folder)
        raise
    try:
        with transaction.atomic():
            session = AnalysisSession(
                owner=owner,
                title=filename[:200],
                filename=filename,
                file_format=result.file_format,
                file_size=size,
                storage_dir=folder,
                original_name=original_name,
                data_name=data_name,
                row_count=result.row_count,
                column_count=len(result.columns),
                columns=result.columns,
                preview=result.preview,
                profile=result.profile,
                detection=result.detection,
                processing_seconds=round(time.monotonic() - started, 3),
            )
            session.full_clean()
            session.save()
            if auto_analyze:
                answer_request(session=session, user=owner, mode=Answer.Mode.AUTO_ANALYZE)
    except BaseException:
        _remove_folder(folder)
        raise
    return session


def session_delete(*, session: AnalysisSession) -> None:
    """Delete the session, its messages and answers, and (after commit) its files."""
    folder = session.storage_dir
    with transaction.atomic():
        Answer.objects.filter(session=session, status__in=ACTIVE).update(cancel_requested=True)
        session.delete()
        transaction.on_commit(lambda: _remove_folder(folder))


def session_title_set(*, session: AnalysisSession, title: str, answer: Answer | None = None) -> None:
    title = " ".join(str(title).split())[:200] or session.filename
    AnalysisSession.objects.filter(pk=session.pk).update(title=title, title_generated=True)
    session.title, session.title_generated = title, True
    message_add(session=session, answer=answer, kind=Message.Kind.SESSION_UPDATE, data={"title": title})


# --- the event log ------------------------------------------------------------------------


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


# --- answers --------------------------------------------------------------------------------


def answer_request(*, session: AnalysisSession, user, mode: str = Answer.Mode.MESSAGE, text: str = "") -> Answer:
    """Record the user's question (or auto-analysis request) and queue the agent."""
    if mode not in Answer.Mode.values:
        raise ValidationError({"type": f"Unknown request type {mode!r}."})
    question = " ".join(str(text or "").split()) if mode == Answer.Mode.MESSAGE else ""
    if mode == Answer.Mode.MESSAGE:
        if not question:
            raise ValidationError({"text": "Type a question first."})
        if len(question) > conf.MAX_QUESTION_CHARS:
            raise ValidationError({"text": f"The question is too long (over {conf.MAX_QUESTION_CHARS} characters)."})
    with transaction.atomic():
        # Lock the session row so two sockets cannot start two answers at once.
        locked = AnalysisSession.objects.select_for_update().get(pk=session.pk)
        if Answer.objects.filter(session=locked, status__in=ACTIVE).exists():
            raise ValidationError({"text": "An answer is still running: wait for it or press Stop."})
        answer = Answer(owner=user, session=locked, mode=mode, question=question, provider=conf.LLM_PROVIDER)
        answer.full_clean(exclude=["owner", "session"])
        answer.save()
        if mode == Answer.Mode.MESSAGE:
            message_add(session=session, answer=answer, kind=Message.Kind.USER, data={"text": question})
    core_services.job_enqueue(job=answer)  # sent after the outermost commit
    return answer


def answer_stop(*, session: AnalysisSession, user) -> int:
    """Stop the running answer(s) of a session; an answer that never started gets its `done` here."""
    stopped = 0
    for answer in Answer.objects.filter(session=session, status__in=ACTIVE):
        core_services.job_cancel(job=answer, by=user)
        stopped += 1
        if answer.status == JobStatus.CANCELLED and not answer.messages.filter(kind=Message.Kind.DONE).exists():
            message_add(session=session, answer=answer, kind=Message.Kind.STATUS, data={"message": "Stopped."})
            message_add(session=session, answer=answer, kind=Message.Kind.DONE,
                        data={"data_updated": False, "status": "cancelled"})
    return stopped


def answer_close_lost(*, answer: Answer) -> None:
    """The worker died mid-answer: tell the chat so the client does not wait forever."""
    if answer.messages.filter(kind=Message.Kind.DONE).exists():
        return
    message_add(session=answer.session, answer=answer, kind=Message.Kind.ERROR,
                data={"message": "The worker running this answer stopped; please ask again."})
    message_add(session=answer.session, answer=answer, kind=Message.Kind.DONE,
                data={"data_updated": False, "status": "failed"})


class AnswerSink:
    """Where the agent loop's events go: persisted messages of the answer; the stop flag is read throttled."""

    def __init__(self, answer: Answer):
        self.answer = answer
        self.session = answer.session
        self._stop = False
        self._checked = 0.0

    def emit(self, kind: str, data: dict, rows_kept: list | None = None) -> None:
        message_add(session=self.session, answer=self.answer, kind=kind, data=data, rows_kept=rows_kept)

    def should_stop(self) -> bool:
        if self._stop:
            return True
        now = time.monotonic()
        if now - self._checked >= 0.2:
            self._checked = now
            self._stop = core_services.job_cancel_requested(job=self.answer)
        return self._stop


def provider_for(*, context: DataContext, name: str | None = None) -> Provider:
    name = (name or conf.LLM_PROVIDER or "builtin").lower()
    if name == "openai":
        from analyzer.agent.openai import OpenAIProvider

        return OpenAIProvider()
    from analyzer.agent.builtin import BuiltinProvider

    if name != "builtin":
        logger.warning("unknown ANALYZER_LLM_PROVIDER %r; using the built-in analyst", name)
    return BuiltinProvider(context=context)


def _history(*, session: AnalysisSession, before: Answer, limit: int = 6) -> list[dict]:
    """Earlier exchanges, condensed to the user's questions and the analyst's text."""
    answers = list(session.answers.filter(pk__lt=before.pk, mode=Answer.Mode.MESSAGE).order_by("-pk")[:limit])
    history: list[dict] = []
    for previous in reversed(answers):
        texts = [m.data.get("text", "") for m in previous.messages.filter(kind=Message.Kind.TEXT).order_by("seq")]
        history.append({"role": "user", "content": previous.question})
        history.append({"role": "assistant", "content": ("".join(texts) or "(charts and tables shown)")[:3000]})
    return history


def answer_run(*, answer: Answer) -> None:
    """The job body: run the agent loop for one answer; always ends the answer with a `done` event."""
    session = answer.session
    sink = AnswerSink(answer)
    context = DataContext.for_session(session, data_path=session_data_path(session=session))
    provider = provider_for(context=context, name=answer.provider or None)
    question = answer.question if answer.mode == Answer.Mode.MESSAGE else AUTO_ANALYSIS_PROMPT
    sink.emit(Message.Kind.STATUS, {"message": "Analyzing the data…" if answer.mode == Answer.Mode.AUTO_ANALYZE
                                    else "Thinking…"})
    messages = [{"role": "system", "content": SYSTEM_PROMPT + "\n" + context.describe_for_model()}]
    messages += _history(session=session, before=answer)
    messages.append({"role": "user", "content": question})
    loop = AgentLoop(provider=provider, context=context, sink=sink)
    outcome_status = "succeeded"
    try:
        outcome = loop.run(messages=messages)
    except AnswerStopped as exc:
        if sink.should_stop():
            sink.emit(Message.Kind.STATUS, {"message": "Stopped."})
            sink.emit(Message.Kind.DONE, {"data_updated": False, "status": "cancelled"})
            raise core_services.JobCancelled() from None
        sink.emit(Message.Kind.ERROR, {"message": str(exc)})
        sink.emit(Message.Kind.DONE, {"data_updated": False, "status": "failed"})
        core_services.job_fail(job=answer, error=str(exc), message="Timed out")
        return
    except ProviderError as exc:
        sink.emit(Message.Kind.ERROR, {"message": str(exc)})
        sink.emit(Message.Kind.DONE, {"data_updated": False, "status": "failed"})
        core_services.job_fail(job=answer, error=str(exc), message="LLM provider error")
        return
    except Exception as exc:
        logger.exception("answer %s failed", answer.pk)
        sink.emit(Message.Kind.ERROR, {"message": f"Something went wrong while answering ({type(exc).__name__})."})
        sink.emit(Message.Kind.DONE, {"data_updated": False, "status": "failed"})
        raise
    if answer.mode == Answer.Mode.MESSAGE and not session.title_generated:
        try:
            title = provider.title(filename=session.filename, question=answer.question,
                                   answer_text=" ".join(outcome.texts))
            session_title_set(session=session, title=title, answer=answer)
        except Exception:
            logger.warning("title generation failed", exc_info=True)
    sink.emit(Message.Kind.DONE, {"data_updated": False, "status": outcome_status})
    core_services.job_succeed(job=answer, message=f"{outcome.queries} queries, {outcome.plots} charts")
