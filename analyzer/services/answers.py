"""Answers: the user's question (or the auto-analysis) queued as a job, the agent loop that writes the
answer into the chat, and stopping it."""

from __future__ import annotations

import json
import logging

from django.core.exceptions import ValidationError
from django.db import transaction

from analyzer import conf
from analyzer.agent.base import Provider, ProviderError
from analyzer.agent.context import DataContext
from analyzer.agent.loop import AgentLoop, AnswerStopped
from analyzer.agent.tools import AUTO_ANALYSIS_PROMPT, SYSTEM_PROMPT
from analyzer.models import AnalysisSession, Answer, Message
from analyzer.selectors import processing_error, session_processing, session_status
from analyzer.services.messages import message_add
from analyzer.services.sessions import ACTIVE, session_data_path, session_title_set
from core import services as core_services
from core.jobkit import JobReporter
from core.models import JobStatus

logger = logging.getLogger(__name__)


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
    """Where the agent loop's events go: persisted messages of the answer; the stop check is the answer's
    reporter (read at most every 0.2 s)."""

    def __init__(self, answer: Answer):
        self.answer = answer
        self.session = answer.session
        self.reporter = JobReporter(answer, check_seconds=0.2)

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
        return self.reporter.should_stop()


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


def answer_run(answer: Answer) -> None:
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
            if not sink.reporter.cancelled:  # abandoned: the recovery pass already closed the chat
                raise sink.reporter.stop from None
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
