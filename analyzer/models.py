"""Analyzer sessions: one uploaded file, its profile, and the chat with the analyst."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from core.models import Job


class AnalysisSession(models.Model):
    """Created by an upload; one file per session; owned by one user."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        PARQUET = "parquet", "Parquet"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="analyzer_sessions")
    title = models.CharField(max_length=200)
    title_generated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The file
    filename = models.CharField(max_length=255)
    file_format = models.CharField(max_length=16, choices=Format.choices)
    file_size = models.BigIntegerField(default=0)
    storage_dir = models.CharField(max_length=255, help_text="Folder in the default storage")
    original_name = models.CharField(max_length=255, blank=True, default="", help_text="Storage name of the original")
    data_name = models.CharField(max_length=255, help_text="Storage name of the DuckDB database file queried")
    row_count = models.BigIntegerField(default=0)
    column_count = models.IntegerField(default=0)
    columns = models.JSONField(default=list, help_text="[{name, type}]")
    preview = models.JSONField(default=list, help_text="First rows, JSON-safe")
    profile = models.JSONField(default=list, help_text="Per column statistics")
    detection = models.JSONField(default=dict, help_text="delimiter, header, encoding, rejected rows…")
    processing_seconds = models.FloatField(default=0.0)

    # Last sequence number handed out to this session's messages.
    event_seq = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.title} (#{self.pk})"

    def get_absolute_url(self) -> str:
        return reverse("analyzer:session_detail", args=[self.pk])


class Message(models.Model):
    """Everything said in a session, in order: user questions and each server event."""

    class Kind(models.TextChoices):
        USER = "user", "User message"
        TEXT = "text", "Text"
        PLOT = "plot", "Plot"
        QUERY_RESULT = "query_result", "Query result"
        STATUS = "status", "Status"
        DONE = "done", "Done"
        ERROR = "error", "Error"
        SESSION_UPDATE = "session_update", "Session update"

    session = models.ForeignKey(AnalysisSession, on_delete=models.CASCADE, related_name="messages")
    answer = models.ForeignKey("Answer", on_delete=models.CASCADE, null=True, blank=True, related_name="messages")
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    data = models.JSONField(default=dict)
    # Full query result (up to the kept row cap) for CSV download; not streamed.
    rows_kept = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "seq"]
        constraints = [models.UniqueConstraint(fields=["session", "seq"], name="analyzer_message_unique_seq")]

    @property
    def role(self) -> str:
        return "user" if self.kind == self.Kind.USER else "assistant"

    def as_event(self) -> dict:
        return {
            "event": self.kind,
            "seq": self.seq,
            "id": self.pk,
            "role": self.role,
            "answer_id": self.answer_id,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "data": self.data,
        }


class Answer(Job):
    """One run of the analyst agent: an answer to a question, or the auto-analysis."""

    class Mode(models.TextChoices):
        MESSAGE = "message", "Question"
        AUTO_ANALYZE = "auto_analyze", "Auto-analysis"

    task_func = "analyzer.tasks.answer_run"
    title_related = ("session",)
    list_defer = ("error", "session__columns", "session__preview", "session__profile", "session__detection")
    title_fields = ("mode", "question", "session__filename")
    # Re-running would append a second answer to the chat.
    requeue_safe = False

    session = models.ForeignKey(AnalysisSession, on_delete=models.CASCADE, related_name="answers")
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.MESSAGE)
    question = models.TextField(blank=True, default="")
    # The analyst the user picked (builtin or a configured provider's name) and the one that answered: with an
    # LLM picked, the built-in analyst still answers the questions it is sure of.
    provider = models.CharField(max_length=40, blank=True, default="")
    analyst = models.CharField(max_length=40, blank=True, default="")
    model = models.CharField(max_length=100, blank=True, default="", help_text="The LLM's model, when one answered")
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    usage_estimated = models.BooleanField(default=False, help_text="The server reported no usage: ~4 characters a token")

    class Meta(Job.Meta):
        pass

    def job_title(self) -> str:
        if self.mode == self.Mode.AUTO_ANALYZE:
            return f"Auto-analysis of {self.session.filename}"
        return f"Answer: {self.question[:60]}"

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def get_absolute_url(self) -> str:
        return reverse("analyzer:session_detail", args=[self.session_id])


class Processing(Job):
    """The background processing of an uploaded file: sniff, validate, load into DuckDB, profile, preview.

    The upload request only stores the bytes and creates the session with this job; the worker
    does the rest and then (optionally) queues the auto-analysis. The session can be queried only
    once this job has succeeded. Its progress and stage events stream over
    `/ws/analyzer/processings/<id>/` (owner only, like everything of a session: `selectors`).
    """

    task_func = "analyzer.tasks.processing_run"
    title_related = ("session",)
    list_defer = ("error", "session__columns", "session__preview", "session__profile", "session__detection")
    title_fields = ("session__filename",)
    # Processing starts from the stored upload and writes under a temporary name: safe to re-run.
    requeue_safe = True

    session = models.OneToOneField(AnalysisSession, on_delete=models.CASCADE, related_name="processing")
    auto_analyze = models.BooleanField(default=True)
    stage = models.CharField(max_length=20, blank=True, default="")

    class Meta(Job.Meta):
        verbose_name = "upload processing"
        verbose_name_plural = "upload processings"

    def job_title(self) -> str:
        return f"Processing {self.session.filename}"

    def get_absolute_url(self) -> str:
        return reverse("analyzer:session_detail", args=[self.session_id])


class AnswerUsage(Answer):
    """What staff see of answers: who used which analyst and how many tokens — not the question or the data."""

    class Meta:
        proxy = True
        verbose_name = "LLM token usage"
        verbose_name_plural = "LLM token usage"

    def __str__(self) -> str:
        return f"Answer #{self.pk} ({self.status})"  # not its question: staff see usage, not the user's words
