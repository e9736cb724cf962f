"""Uploaded scripts, their sandboxed runs and the runs' ordered log chunks."""

from django.conf import settings
from django.db import models
from django.urls import reverse

from core.models import Job


class Script(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scripts")
    name = models.CharField(max_length=100)
    file = models.FileField(upload_to="scripts_runner/scripts/", max_length=300)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="scripts_runner_script_unique_name")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("scripts_runner:script_detail", args=[self.pk])


class EndReason(models.TextChoices):
    EXITED = "exited", "Exited"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Wall-time limit"
    CPU_LIMIT = "cpu_limit", "CPU-time limit"
    OUT_OF_MEMORY = "out_of_memory", "Out of memory"
    FILE_SIZE = "file_size", "File-size limit"
    DISK_LIMIT = "disk_limit", "Disk limit"
    OUTPUT_LIMIT = "output_limit", "Output limit"
    WORKER_LOST = "worker_lost", "Worker lost"
    WORKER_STOPPED = "worker_stopped", "Worker stopped"
    SANDBOX_ERROR = "sandbox_error", "Sandbox could not start"
    INTERNAL_ERROR = "internal_error", "Internal error"


class ScriptRun(Job):
    task_func = "scripts_runner.tasks.script_run_execute"
    title_related = ("script",)
    title_fields = ("script__name",)
    list_defer = ("error", "env")
    # A script may not be safe to run twice: never re-queued by recovery.
    requeue_safe = False

    script = models.ForeignKey(Script, on_delete=models.CASCADE, related_name="runs")
    args = models.JSONField(default=list, blank=True)
    env = models.JSONField(default=dict, blank=True)
    network = models.BooleanField(default=False, help_text="Network was allowed for this run")
    sandboxed = models.BooleanField(default=True)
    script_sha256 = models.CharField(max_length=64, blank=True, default="")
    exit_code = models.IntegerField(null=True, blank=True)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True, default="")
    output_bytes = models.BigIntegerField(default=0)
    output_lines = models.BigIntegerField(default=0)
    truncated = models.BooleanField(default=False)
    log_removed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the log was removed to keep the owner's stored logs within their limit")

    class Meta(Job.Meta):
        permissions = [
            ("run_scripts", "Can run uploaded scripts"),
            ("use_network", "Can use the network from scripts"),
        ]
        indexes = [*Job.Meta.indexes,
                   models.Index(fields=["script", "-created_at"], name="scripts_run_script_created")]

    def job_title(self) -> str:
        return f"Run #{self.pk} of {self.script.name}"

    def get_absolute_url(self) -> str:
        return reverse("scripts_runner:scriptrun_detail", args=[self.pk])

    @property
    def end_description(self) -> str:
        if not self.end_reason:
            return ""
        if self.end_reason == EndReason.CANCELLED and self.cancelled_by_id:
            return f"Cancelled by {self.cancelled_by}"
        if self.end_reason == EndReason.EXITED and self.exit_code is not None:
            return f"Exited with code {self.exit_code}"
        return self.get_end_reason_display()


class LogStream(models.TextChoices):
    STDOUT = "stdout", "stdout"
    STDERR = "stderr", "stderr"
    SYSTEM = "system", "runner"


class LogChunk(models.Model):
    """Consecutive lines of one stream; `seq` orders chunks within a run."""

    run = models.ForeignKey(ScriptRun, on_delete=models.CASCADE, related_name="chunks")
    seq = models.BigIntegerField()
    stream = models.CharField(max_length=6, choices=LogStream.choices)
    first_line = models.BigIntegerField(help_text="Number of the chunk's first line in the run's log (1-based)")
    line_count = models.IntegerField()
    text = models.TextField(help_text="Lines joined with newlines, without a trailing newline")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="scripts_runner_chunk_unique_seq")]

    def lines(self) -> list[str]:
        return self.text.split("\n")

    def as_message(self) -> dict:
        return {
            "type": "event",
            "seq": self.seq,
            "kind": "log",
            "data": {"stream": self.stream, "first_line": self.first_line, "lines": self.lines()},
        }
