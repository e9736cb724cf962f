"""What every domain shares: the abstract Job, its ordered events, worker heartbeats."""

from django.conf import settings
from django.db import models
from django.urls import NoReverseMatch, reverse


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    """Base of every long piece of work (export, script run, fetch, backtest…).

    A concrete job is `class Export(Job): ...` in a domain app. Its kind is
    `model._meta.label_lower` ("trades.export"); its live stream is a
    `core.streams.JobStream` subclass in the app's consumers (`/ws/<app>/<kind>/<id>/`),
    and who may watch it is the app's visibility selector. All state changes go through
    `core.services`.
    """

    Status = JobStatus

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0, help_text="Fraction done, 0..1")
    message = models.CharField(max_length=500, blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    task_id = models.CharField(max_length=64, blank=True, default="")
    # The worker cluster instance running it (`settings.WORKER_ID`, set when it starts): the recovery
    # pass judges a running job by that instance's heartbeat.
    worker_id = models.CharField(max_length=200, blank=True, default="")
    # How often a lost or interrupted run was queued again (a safe kind is, once).
    requeues = models.PositiveSmallIntegerField(default=0)
    # Last sequence number handed out for this job's ordered events.
    event_seq = models.BigIntegerField(default=0)

    # Dotted path of the django-q2 task that runs this kind of job: `func(pk)`.
    task_func: str = ""
    # Whether the job may run again after it started: a running job whose worker was lost or stopped is
    # then queued again once (`core.recovery.job_interrupt`), else failed. (A queued job never started,
    # so one whose task vanished is always queued again.)
    requeue_safe = True
    # Relations `job_title` reads, fetched with the row in job lists (one query per kind, not per row),
    # and large columns job lists never show.
    title_related: tuple[str, ...] = ()
    list_defer: tuple[str, ...] = ("error",)
    # The other columns `job_title` and `get_absolute_url` read ("script__name"): the dashboard loads only
    # these and the common ones, so a busy user's rows stay small.
    title_fields: tuple[str, ...] = ()

    class Meta:
        abstract = True
        ordering = ["-created_at"]
        # A user's newest jobs (the dashboard, every job list): read from the index's start, never sorted.
        indexes = [models.Index(fields=["owner", "-created_at"], name="%(class)s_owner_created")]

    @property
    def kind(self) -> str:
        return self._meta.label_lower

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    def get_absolute_url(self) -> str:
        try:
            return reverse(f"{self._meta.app_label}:{self._meta.model_name}_detail", args=[self.pk])
        except NoReverseMatch:
            return ""

    def job_title(self) -> str:
        """Short human title for dashboards; domains override."""
        return f"{self._meta.verbose_name.capitalize()} #{self.pk}"

    def __str__(self) -> str:
        return f"{self.job_title()} ({self.status})"


class JobEvent(models.Model):
    """An ordered event of any job (progress lines, partial results, …)."""

    job_kind = models.CharField(max_length=100)
    job_id = models.BigIntegerField()
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=50)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job_kind", "job_id", "seq"], name="core_jobevent_unique_seq"),
        ]
        ordering = ["job_kind", "job_id", "seq"]

    def as_message(self) -> dict:
        return {"type": "event", "seq": self.seq, "kind": self.kind, "data": self.data}


class WorkerHeartbeat(models.Model):
    """One row per live worker cluster instance (`name` is its `WORKER_ID`), refreshed every few
    seconds by the cluster's main process; `started_at` is the start of its current life."""

    name = models.CharField(max_length=200, unique=True)
    pid = models.IntegerField()
    host = models.CharField(max_length=200)
    started_at = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField(db_index=True)
    # Whether this process reached the task broker at its last beat, and why not.
    broker_ok = models.BooleanField(default=True)
    broker_error = models.CharField(max_length=300, blank=True, default="")
    # The tasks this instance holds (prefetched or running), by name, as of its last beat.
    held = models.JSONField(default=list, blank=True)
    # "starting" (until its workers are up), "running", "stopping": only a running instance takes tasks.
    state = models.CharField(max_length=10, default="running")

    def __str__(self) -> str:
        return f"{self.name} ({self.host}:{self.pid})"


class WorkerCheck(Job):
    """A self-test job: the worker reports `steps` progress events, one every `interval_ms`.

    Staff start it from the health page (and the tests do) to prove the
    whole path: queue → worker → database → doorbell → websocket.
    """

    task_func = "core.tasks.worker_check_run"

    steps = models.PositiveIntegerField(default=5)
    interval_ms = models.PositiveIntegerField(default=200)
    # A check may prove the recovery path too: queued again once when its worker is lost or stops.
    requeue_safe = models.BooleanField(default=False)

    class Meta(Job.Meta):
        verbose_name = "worker check"

    def get_absolute_url(self) -> str:
        return reverse("core:health")
