"""Analyzer reads: a user's sessions, one session, its messages after a sequence number."""

from __future__ import annotations

from datetime import timezone as dt_timezone

from django.db.models import QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from analyzer.models import AnalysisSession, Answer, Message, Processing
from core.models import JobStatus
from core.permissions import found_or_404, get_for_viewer


def session_list(*, user) -> QuerySet[AnalysisSession]:
    """The user's own sessions, newest first (sessions are private, staff included)."""
    if not user or not user.is_authenticated:
        return AnalysisSession.objects.none()
    return AnalysisSession.objects.filter(owner=user).select_related("processing").only(
        "id", "title", "filename", "created_at", "row_count", "column_count", "file_format", "file_size", "owner_id",
        "processing__id", "processing__status", "processing__error", "processing__session_id",
    ).order_by("-created_at", "-id")


def _owned(queryset: QuerySet, user) -> QuerySet:
    # Everything of a session is private to its owner, staff included (the data may be anyone's).
    if not user or not user.is_authenticated:
        return queryset.none()
    return queryset.filter(owner=user)


def session_get_for_viewer(*, user, pk) -> AnalysisSession | None:
    """Who may see a session (its pages, the API, its chat websocket): its owner only."""
    return get_for_viewer(_owned(AnalysisSession.objects.all(), user), pk)


def session_get(*, user, pk) -> AnalysisSession:
    """The user's session or Http404 (never reveals that another user's session exists)."""
    return found_or_404(session_get_for_viewer(user=user, pk=pk))


def processing_get_for_viewer(*, user, pk) -> Processing | None:
    """Who may watch a session's processing job: the session's owner only."""
    return get_for_viewer(_owned(Processing.objects.select_related("session"), user).filter(session__owner=user), pk)


def answer_get_for_viewer(*, user, pk) -> Answer | None:
    """Who may watch an answer job: the session's owner only (its progress quotes the data)."""
    return get_for_viewer(_owned(Answer.objects.select_related("session"), user).filter(session__owner=user), pk)


def messages_after(*, session_id: int, after: int = 0, limit: int = 500) -> list[Message]:
    return list(Message.objects.filter(session_id=session_id, seq__gt=after).defer("rows_kept").order_by("seq")[:limit])


def session_messages(*, session: AnalysisSession) -> list[dict]:
    return [m.as_event() for m in Message.objects.filter(session=session).defer("rows_kept").order_by("seq")]


def session_running_answer(*, session: AnalysisSession) -> Answer | None:
    return session.answers.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).order_by("-pk").first()


def message_with_rows(*, session: AnalysisSession, message_id) -> Message:
    try:
        return Message.objects.get(pk=int(message_id), session=session, kind=Message.Kind.QUERY_RESULT)
    except (Message.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404("Not found.") from None


def session_file_info(*, session: AnalysisSession) -> dict:
    return {
        "filename": session.filename,
        "format": session.file_format,
        "size": session.file_size,
        "row_count": session.row_count,
        "column_count": session.column_count,
        "columns": session.columns,
        "preview": session.preview,
        "profile": session.profile,
        "detection": session.detection,
        "processing_seconds": session.processing_seconds,
    }


def processing_websocket(*, job: Processing) -> str:
    from analyzer.consumers import ProcessingStream

    return ProcessingStream.path(job.pk)


def processing_error(*, job: Processing | None) -> str:
    """The message shown to the user for a processing that did not succeed."""
    if job is None:
        return ""
    if job.status == JobStatus.CANCELLED:
        return "The processing of this file was cancelled; upload it again to analyze it."
    if job.status == JobStatus.FAILED:
        if job.error in ("worker lost", "task ended without running the job"):
            return "The worker processing this file stopped; please upload it again."
        return job.error or "The file could not be processed."
    return ""


def session_processing(*, session: AnalysisSession) -> Processing | None:
    """The session's processing job (None for sessions created before processing moved to a job)."""
    try:
        return session.processing
    except Processing.DoesNotExist:
        return None


def session_status(*, session: AnalysisSession) -> str:
    """`processing` (queued or running), `ready` or `failed` (failed, cancelled or worker lost)."""
    job = session_processing(session=session)
    if job is None or job.status == JobStatus.SUCCEEDED:
        return "ready"
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return "processing"
    return "failed"


def session_processing_info(*, session: AnalysisSession) -> dict:
    """The session's state for pages and the API: `status` processing | ready | failed, and its job."""
    job = session_processing(session=session)
    info = {"status": session_status(session=session), "error": processing_error(job=job), "job": None}
    if job is not None:
        info["job"] = {
            "id": job.pk,
            "kind": job.kind,
            "status": job.status,
            "stage": job.stage,
            "progress": job.progress,
            "message": job.message,
            "error": processing_error(job=job),
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "websocket": processing_websocket(job=job),
            "job_websocket": processing_websocket(job=job),
        }
    return info


def tokens_used_today(*, user) -> int:
    """LLM tokens (prompt + completion) the user's answers used since 00:00 UTC today."""
    midnight = timezone.now().astimezone(dt_timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    totals = Answer.objects.filter(owner=user, created_at__gte=midnight).aggregate(
        prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
    return (totals["prompt"] or 0) + (totals["completion"] or 0)


def session_answers_usage(*, session: AnalysisSession) -> dict[str, dict]:
    """Per answer of the session that used an LLM: its analyst, model and tokens (what staff see)."""
    rows = session.answers.exclude(model="").values("pk", "analyst", "model", "prompt_tokens", "completion_tokens",
                                                    "usage_estimated")
    return {str(r["pk"]): {"analyst": r["analyst"], "model": r["model"], "prompt_tokens": r["prompt_tokens"],
                           "completion_tokens": r["completion_tokens"], "estimated": r["usage_estimated"]}
            for r in rows}
