"""Analyzer writes: sessions from uploads, chat messages (the event log), answers (agent jobs), deletion.

Every message is written to the database first and the session's group is
rung after commit, so websocket consumers (in any process) pick it up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
import uuid

from django.core.exceptions import ValidationError
from django.core.files.move import file_move_safe
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import F

from analyzer import conf
from analyzer.agent.base import Provider, ProviderError
from analyzer.agent.context import DataContext
from analyzer.agent.loop import AgentLoop, AnswerStopped
from analyzer.agent.tools import AUTO_ANALYSIS_PROMPT, SYSTEM_PROMPT
from analyzer.ingest import PARQUET_EXTENSIONS, STAGES, IngestError, Progress, check_magic, file_extension, ingest
from analyzer.models import AnalysisSession, Answer, Message, Processing
from analyzer.selectors import processing_error, session_processing, session_status  # noqa: F401  (reads)
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


def _store_upload(*, upload, name: str) -> str:
    """Store the uploaded bytes under `name` in the default storage; answer the storage name.

    A large upload already sits in Django's temporary file (streamed there by the upload
    handlers): it is moved into place (a rename on the same filesystem), never copied or read.
    """
    temp_path = getattr(upload, "temporary_file_path", None)
    try:
        dst = default_storage.path(name)
    except NotImplementedError:
        dst = None
    if temp_path is not None and dst is not None:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        partial = os.path.join(os.path.dirname(dst), ".part-" + os.path.basename(dst))
        file_move_safe(temp_path(), partial, allow_overwrite=True)
        os.replace(partial, dst)  # atomic: a half-moved file never looks complete
        return name
    return default_storage.save(name, upload)


def session_create_from_upload(*, owner, upload, auto_analyze: bool = True) -> AnalysisSession:
    """Check what is cheap (name, extension, size, magic bytes), store the bytes, create the session
    and queue its processing job (which then starts the auto-analysis when `auto_analyze`).

    Raises ValidationError (no session, no files left) for what the cheap checks refuse; everything
    else (parsing, "no rows"…) is found by the processing job and ends it failed with the reason.
    """
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
    try:
        original_name = _store_upload(upload=upload, name=f"{folder}/original{ext}")
        check_magic(path=default_storage.path(original_name), filename=filename)
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
                file_format=AnalysisSession.Format.PARQUET if ext in PARQUET_EXTENSIONS else AnalysisSession.Format.CSV,
                file_size=size,
                storage_dir=folder,
                original_name=original_name,
                data_name=f"{folder}/data.duckdb",
            )
            session.full_clean(exclude=["columns", "preview", "profile", "detection"])  # filled by the job
            session.save()
            job = Processing(owner=owner, session=session, auto_analyze=bool(auto_analyze),
                             message="Waiting for a worker…")
            job.save()
            core_services.job_enqueue(job=job)  # sent after the outermost commit
    except BaseException:
        _remove_folder(folder)
        raise
    session.processing = job
    return session


# --- upload processing (the background job) --------------------------------------------------


class ProcessingProgress(Progress):
    """Reports the stages of `ingest` on the job: stage event + progress, cancel check; watches the load."""

    poll_seconds = 1.0

    def __init__(self, job: Processing, *, threads: bool):
        self.job = job
        self.threads = threads  # False when running inline (tests): one DB connection only

    def stage(self, name: str) -> None:
        core_services.job_raise_if_cancelled(job=self.job)
        fraction, message = STAGES[name]
        Processing.objects.filter(pk=self.job.pk).update(stage=name)
        self.job.stage = name
        core_services.job_progress(job=self.job, fraction=fraction, message=message)
        core_services.job_event_add(job=self.job, kind="stage", data={"stage": name, "message": message})

    @contextlib.contextmanager
    def watch(self, con, *, start: float, end: float):
        if not self.threads:
            yield
            return
        stopped = threading.Event()
        job = self.job

        def run() -> None:
            last = -1.0
            try:
                cancelled = False
                while not stopped.wait(self.poll_seconds):
                    # Interrupt at every poll once cancelled: an interrupt that lands before DuckDB
                    # has started the statement is lost, so one call is not enough.
                    if cancelled or core_services.job_cancel_requested(job=job):
                        cancelled = True
                        con.interrupt()
                        continue
                    percent = con.query_progress()
                    if percent is None or percent < 0:
                        continue
                    fraction = min(end, start + (end - start) * min(100.0, float(percent)) / 100.0)
                    if fraction - last >= 0.01:
                        last = fraction
                        core_services.job_progress(job=job, fraction=fraction,
                                                   message=f"{STAGES['load'][1]} {percent:.0f}%")
            except Exception:
                logger.warning("progress watcher stopped", exc_info=True)
            finally:
                connection.close()

        watcher = threading.Thread(target=run, daemon=True, name=f"analyzer-progress-{job.pk}")
        watcher.start()
        try:
            yield
        finally:
            stopped.set()
            watcher.join(timeout=10)


def _processing_inline() -> bool:
    from django_q.conf import Conf

    return bool(Conf.SYNC) or connection.in_atomic_block


def processing_run(*, job: Processing) -> None:
    """The job body: validate and load the stored upload, fill the session, then queue the auto-analysis.

    A file that cannot be used ends the job failed with the reason (shown on the session page and in the
    API); its stored files are removed, and the session, which cannot be queried, only shows the error.
    """
    session = job.session
    progress = ProcessingProgress(job, threads=not _processing_inline())
    started = time.monotonic()
    try:
        result = ingest(src=default_storage.path(session.original_name), filename=session.filename,
                        data_dst=default_storage.path(session.data_name), progress=progress)
    except core_services.JobCancelled:
        processing_cleanup(session=session)
        raise
    except IngestError as exc:
        if core_services.job_cancel_requested(job=job):  # the watcher interrupted DuckDB
            processing_cleanup(session=session)
            raise core_services.JobCancelled() from None
        processing_fail(job=job, error=str(exc))
        return
    except Exception as exc:
        logger.exception("processing of analyzer session %s failed", session.pk)
        processing_fail(job=job, error=f"Something went wrong while processing the file ({type(exc).__name__}).")
        return
    original_name = session.original_name
    keep = conf.KEEP_ORIGINAL
    with transaction.atomic():
        AnalysisSession.objects.filter(pk=session.pk).update(
            file_format=result.file_format,
            row_count=result.row_count,
            column_count=len(result.columns),
            columns=result.columns,
            preview=result.preview,
            profile=result.profile,
            detection=result.detection,
            processing_seconds=round(time.monotonic() - started, 3),
            original_name=original_name if keep else "",
        )
        session.refresh_from_db()
        Processing.objects.filter(pk=job.pk).update(stage="done")
        job.stage = "done"
        core_services.job_event_add(job=job, kind="stage", data={"stage": "done", "message": "Ready."})
        core_services.job_succeed(job=job, message=f"{result.row_count:,} rows × {len(result.columns)} columns")
        if not keep:
            transaction.on_commit(lambda: default_storage.delete(original_name))
    if job.auto_analyze:
        try:
            answer_request(session=session, user=job.owner, mode=Answer.Mode.AUTO_ANALYZE)
        except ValidationError:
            logger.warning("auto-analysis of session %s not started", session.pk, exc_info=True)


def processing_cleanup(*, session: AnalysisSession) -> None:
    """Remove the files of a session whose processing did not succeed (the row stays, with the error)."""
    _remove_folder(session.storage_dir)
    AnalysisSession.objects.filter(pk=session.pk).update(original_name="")
    session.original_name = ""


def processing_fail(*, job: Processing, error: str) -> None:
    processing_cleanup(session=job.session)
    Processing.objects.filter(pk=job.pk).update(stage="failed")
    job.stage = "failed"
    core_services.job_event_add(job=job, kind="stage", data={"stage": "failed", "message": error})
    core_services.job_fail(job=job, error=error, message="Could not process the file")


def processing_cancel(*, job: Processing, by=None) -> Processing:
    """Stop the processing: a queued job is cancelled at once (files removed here), a running one at its next
    check (the watcher interrupts DuckDB; the job body removes the files)."""
    core_services.job_cancel(job=job, by=by)
    if job.status == JobStatus.CANCELLED:
        processing_cleanup(session=job.session)
    return job


def processing_after_run(*, job: Processing | None) -> None:
    """After the task: a job that did not succeed keeps no files (also when it never ran: cancelled while queued)."""
    if job is not None and job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        session = AnalysisSession.objects.filter(pk=job.session_id).first()
        if session is not None and (session.original_name or default_storage.exists(session.storage_dir)):
            processing_cleanup(session=session)


def processing_close_lost(*, job: Processing) -> None:
    """The worker died while processing (core's recovery already failed the job): drop the files."""
    processing_cleanup(session=job.session)


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
    message = Message(session=session, answer=answer, seq=0, kind=kind, data=data, rows_kept=rows_kept)
    message.full_clean(exclude=["session", "answer", "data", "rows_kept", "seq"])
    return core_services.stream_append(owner=session, rows=[message])[0]


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
        refusal = session_not_ready_message(session=locked)
        if refusal:
            raise ValidationError({"text": refusal})
        if Answer.objects.filter(session=locked, status__in=ACTIVE).exists():
            raise ValidationError({"text": "An answer is still running: wait for it or press Stop."})
        answer = Answer(owner=user, session=locked, mode=mode, question=question, provider=conf.LLM_PROVIDER)
        answer.full_clean(exclude=["owner", "session"])
        answer.save()
        if mode == Answer.Mode.MESSAGE:
            message_add(session=session, answer=answer, kind=Message.Kind.USER, data={"text": question})
    core_services.job_enqueue(job=answer)  # sent after the outermost commit
    return answer


def session_not_ready_message(*, session: AnalysisSession) -> str:
    """Why the session cannot be asked anything yet ("" when it is ready)."""
    status = session_status(session=session)
    if status == "processing":
        return "The file is still being processed: questions can be asked once it is ready."
    if status == "failed":
        reason = processing_error(job=session_processing(session=session))
        return (f"This file could not be processed, so there is nothing to ask about: {reason} "
                "Upload a corrected file to start a new session.")
    return ""


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


def message_max_bytes() -> int:
    """Largest event an answer stores: a result's kept rows plus its shown rows, with room for the rest."""
    return 2 * conf.RESULT_STORED_BYTES + conf.PLOT_SPEC_MAX_BYTES + 64 * 1024


class AnswerSink:
    """Where the agent loop's events go: persisted messages of the answer; the stop flag is read throttled."""

    def __init__(self, answer: Answer):
        self.answer = answer
        self.session = answer.session
        self._stop = False
        self._checked = 0.0

    def emit(self, kind: str, data: dict, rows_kept: list | None = None) -> None:
        # The query budgets bound results and charts; this bounds whatever else an answer writes (an endpoint's
        # error text, …): an event too large to store becomes a short error instead.
        size = len(json.dumps(data, default=str)) + len(json.dumps(rows_kept, default=str))
        if size > message_max_bytes():
            logger.warning("answer %s: %s event of %s bytes not stored", self.answer.pk, kind, size)
            kind, data, rows_kept = Message.Kind.ERROR, {"message": f"This {kind.replace('_', ' ')} was too large "
                                                          f"to show ({size:,} bytes)."}, None
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
