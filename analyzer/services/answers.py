"""Answers: the user's question (or the auto-analysis) queued as a job, the agent loop that writes the
answer into the chat, and stopping it."""

from __future__ import annotations

import json
import logging

from django.core.exceptions import ValidationError
from django.db import transaction

from analyzer import conf
from analyzer.agent import providers
from analyzer.agent.base import Provider, ProviderError
from analyzer.agent.context import DataContext
from analyzer.agent.loop import AgentLoop, AnswerStopped, BudgetReached, LoopOutcome
from analyzer.agent.tools import AUTO_ANALYSIS_PROMPT, SYSTEM_PROMPT
from analyzer.models import AnalysisSession, Answer, Message
from analyzer.selectors import processing_error, session_processing, session_status, tokens_used_today
from analyzer.services.messages import message_add
from analyzer.services.sessions import ACTIVE, session_data_path, session_title_set
from core import services as core_services
from core.jobkit import JobReporter
from core.models import JobStatus

logger = logging.getLogger(__name__)


def answer_request(*, session: AnalysisSession, user, mode: str = Answer.Mode.MESSAGE, text: str = "",
                   analyst: str = "") -> Answer:
    """Record the user's question (or auto-analysis request) and queue the agent; `analyst` is the one the user
    picked (builtin or a configured provider's name; empty: the default)."""
    if mode not in Answer.Mode.values:
        raise ValidationError({"type": f"Unknown request type {mode!r}."})
    analyst = str(analyst or "").strip().lower() or providers.analyst_default()
    if analyst != providers.BUILTIN and providers.provider_config_get(analyst) is None:
        names = ", ".join(a["name"] for a in providers.analysts_available())
        raise ValidationError({"analyst": f"Unknown analyst {analyst[:40]!r}: pick one of {names}."})
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
        answer = Answer(owner=user, session=locked, mode=mode, question=question, provider=analyst)
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
    """The provider of one analyst: builtin, or the configured LLM provider of that name."""
    name = (name or providers.analyst_default()).lower()
    config = providers.provider_config_get(name) if name != providers.BUILTIN else None
    if config is not None:
        from analyzer.agent.openai import OpenAIProvider

        return OpenAIProvider(config=config)
    from analyzer.agent.builtin import BuiltinProvider

    if name != providers.BUILTIN:
        logger.warning("analyst %r is not configured (any more); using the built-in analyst", name)
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


def _usage_record(*, answer: Answer, outcome: LoopOutcome, provider: Provider) -> None:
    config = getattr(provider, "config", None)
    Answer.objects.filter(pk=answer.pk).update(
        analyst=provider.name, model=config.model if config else "", prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens, usage_estimated=outcome.usage_estimated)


def _budget_message(*, budget: int, used: int, stopped: bool) -> str:
    what = "This answer was stopped: it reached" if stopped else "No LLM answer now: you have used"
    return (f"{what} your daily budget of {budget:,} LLM tokens ({used:,} used today). It renews at 00:00 UTC; "
            "until then the built-in analyst still answers the questions it can read.")


def _end(sink: AnswerSink, answer: Answer, *, message: str, error: str, analyst: str) -> None:
    sink.emit(Message.Kind.ERROR, {"message": message})
    sink.emit(Message.Kind.DONE, {"data_updated": False, "status": "failed", **_named(analyst)})
    core_services.job_fail(job=answer, error=message, message=error)


def _named(analyst: str) -> dict:
    return {"analyst": analyst or providers.BUILTIN, "analyst_label": providers.analyst_label(analyst)}


def answer_run(answer: Answer) -> None:
    """The job body: run the agent loop for one answer; always ends the answer with a `done` event.

    With an LLM picked, the built-in analyst reads the question first: when it is sure of it (it would neither ask
    back nor refuse) it answers, fast and free; otherwise the question goes to the LLM, within the user's daily
    token budget."""
    session = answer.session
    sink = AnswerSink(answer)
    context = DataContext.for_session(session, data_path=session_data_path(session=session))
    question = answer.question if answer.mode == Answer.Mode.MESSAGE else AUTO_ANALYSIS_PROMPT
    messages = _history(session=session, before=answer)
    messages.append({"role": "user", "content": question})
    provider = provider_for(context=context, name=answer.provider or None)
    config = getattr(provider, "config", None)
    if config is not None and config.builtin_first:
        from analyzer.agent.builtin import BuiltinProvider

        builtin = BuiltinProvider(context=context)
        if builtin.is_sure(messages):
            provider, config = builtin, None
    send_rows = config.send_rows if config is not None else True
    label = providers.analyst_label(provider.name)
    sink.emit(Message.Kind.STATUS, {"message": f"{label}: analyzing the data…" if answer.mode == Answer.Mode.AUTO_ANALYZE
                                    else f"{label}: thinking…", **_named(provider.name)})
    token_budget = None
    if config is not None and conf.DAILY_TOKEN_BUDGET > 0:
        used = tokens_used_today(user=answer.owner)
        if used >= conf.DAILY_TOKEN_BUDGET:
            _usage_record(answer=answer, outcome=LoopOutcome(), provider=provider)
            _end(sink, answer, message=_budget_message(budget=conf.DAILY_TOKEN_BUDGET, used=used, stopped=False),
                 error="Daily token budget used up", analyst=provider.name)
            return
        token_budget = conf.DAILY_TOKEN_BUDGET - used
    messages.insert(0, {"role": "system",
                        "content": SYSTEM_PROMPT + "\n" + context.describe_for_model(send_rows=send_rows)})
    loop = AgentLoop(provider=provider, context=context, sink=sink, token_budget=token_budget, send_rows=send_rows)
    outcome_status = "succeeded"
    try:
        outcome = loop.run(messages=messages)
    except AnswerStopped as exc:
        if sink.should_stop():
            if not sink.reporter.cancelled:  # abandoned: the recovery pass already closed the chat
                raise sink.reporter.stop from None
            sink.emit(Message.Kind.STATUS, {"message": "Stopped."})
            sink.emit(Message.Kind.DONE, {"data_updated": False, "status": "cancelled", **_named(provider.name)})
            raise core_services.JobCancelled() from None
        _end(sink, answer, message=str(exc), error="Timed out", analyst=provider.name)
        return
    except BudgetReached:
        used = tokens_used_today(user=answer.owner) + loop.outcome.tokens  # this answer's are not recorded yet
        _end(sink, answer, message=_budget_message(budget=conf.DAILY_TOKEN_BUDGET, used=used, stopped=True),
             error="Daily token budget reached", analyst=provider.name)
        return
    except ProviderError as exc:
        _end(sink, answer, message=str(exc), error="LLM provider error", analyst=provider.name)
        return
    except Exception as exc:
        logger.exception("answer %s failed", answer.pk)
        sink.emit(Message.Kind.ERROR, {"message": f"Something went wrong while answering ({type(exc).__name__})."})
        sink.emit(Message.Kind.DONE, {"data_updated": False, "status": "failed", **_named(provider.name)})
        raise
    finally:
        _usage_record(answer=answer, outcome=loop.outcome, provider=provider)
    if answer.mode == Answer.Mode.MESSAGE and not session.title_generated:
        try:
            title = provider.title(filename=session.filename, question=answer.question,
                                   answer_text=" ".join(outcome.texts))
            session_title_set(session=session, title=title, answer=answer)
            title_usage = getattr(provider, "title_usage", None)
            if title_usage is not None:
                outcome.prompt_tokens += title_usage.prompt_tokens
                outcome.completion_tokens += title_usage.completion_tokens
                _usage_record(answer=answer, outcome=outcome, provider=provider)
        except Exception:
            logger.warning("title generation failed", exc_info=True)
    sink.emit(Message.Kind.DONE, {"data_updated": False, "status": outcome_status, **_named(provider.name)})
    core_services.job_succeed(job=answer, message=f"{outcome.queries} queries, {outcome.plots} charts")
