"""Branches, their POS file sources, fetch jobs, stored files, combined records, audit log."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.urls import reverse

from core.models import Job

POS_NUMBERS = (1, 2)
POS_CHOICES = [(n, f"POS {n}") for n in POS_NUMBERS]


class FileSource(models.Model):
    """Where a branch's POS terminals put their export files."""

    class Kind(models.TextChoices):
        HTTP = "http", "HTTP host"
        DIRECTORY = "directory", "Directory (network share)"

    class ListingFormat(models.TextChoices):
        JSON = "json", "JSON"
        TEXT = "text", "Plain text, one file name per line"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.HTTP)
    list_url_template = models.CharField(
        max_length=500, blank=True, default="",
        help_text="e.g. https://pos.example/fetch_list2.php?branch={branch}&pos={pos}&date={date}",
    )
    download_url_template = models.CharField(
        max_length=500, blank=True, default="",
        help_text="e.g. https://pos.example/files/{branch}/{pos}/{date}/{name}",
    )
    listing_format = models.CharField(max_length=8, choices=ListingFormat.choices, default=ListingFormat.JSON)
    username = models.CharField(max_length=200, blank=True, default="")
    password = models.CharField(max_length=200, blank=True, default="")
    timeout_seconds = models.FloatField(null=True, blank=True, help_text="Empty = ETL_HTTP_TIMEOUT")
    max_retries = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty = ETL_HTTP_RETRIES")
    rate_limit_per_second = models.FloatField(null=True, blank=True, help_text="Empty = ETL_HTTP_RATE_LIMIT")
    root_path = models.CharField(
        max_length=500, blank=True, default="", help_text="Directory sources: <root>/<branch>/<pos>/<YYYYMMDD>/"
    )

    def __str__(self) -> str:
        return self.name


class Branch(models.Model):
    code = models.CharField(
        max_length=32, unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9_-]+$", "Use letters, digits, '-' and '_' only.")],
        help_text="The branch id used by the POS host.",
    )
    name = models.CharField(max_length=200)
    is_new_branch = models.BooleanField(default=False, help_text="New branches export ',' UTF-8 files with ISO dates.")
    parser_config = models.JSONField(default=dict, blank=True, help_text="Overrides of the defaults of the branch kind.")
    source = models.ForeignKey(FileSource, on_delete=models.PROTECT, null=True, blank=True, related_name="branches")
    is_active = models.BooleanField(default=True)
    opened_on = models.DateField(null=True, blank=True, help_text="No data is expected before this day.")
    closed_weekdays = models.JSONField(
        default=list, blank=True, help_text="Weekdays without trading, 0 = Monday … 6 = Sunday."
    )
    closed_dates = models.JSONField(default=list, blank=True, help_text="Extra closed days, YYYY-MM-DD.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "branches"

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    def get_absolute_url(self) -> str:
        return reverse("etl:branch_edit", args=[self.pk])

    def closed_days(self) -> set:
        from datetime import date

        days = set()
        for value in self.closed_dates or []:
            try:
                days.add(date.fromisoformat(str(value)))
            except ValueError:
                continue
        return days

    def expects_data(self, day, *, today=None, closed: set | None = None) -> bool:
        """Whether the terminals should have exported files for `day` (open, not closed, not in the future)."""
        if today is not None and day > today:
            return False
        if self.opened_on and day < self.opened_on:
            return False
        return day.weekday() not in (self.closed_weekdays or []) and day not in (
            self.closed_days() if closed is None else closed)


class FetchJob(Job):
    """Fetch, select, store, parse and load one branch × POS × day. One row per day, re-run in place."""

    task_func = "etl.tasks.fetch_job_execute"
    title_related = ("branch",)
    title_fields = ("branch__code", "pos", "work_date")
    list_defer = ("error", "file_list", "chosen_files", "counts", "rejected_examples",
                  "branch__parser_config", "branch__closed_weekdays", "branch__closed_dates")
    # Re-running replaces the day's records in one transaction, so a lost task may be re-queued.
    requeue_safe = True

    branch = models.ForeignKey(Branch, on_delete=models.CASCADE, related_name="jobs")
    pos = models.PositiveSmallIntegerField(choices=POS_CHOICES)
    work_date = models.DateField(db_index=True)
    force = models.BooleanField(default=False, help_text="The current/last run reprocesses existing data.")
    attempt_count = models.PositiveIntegerField(default=0)
    file_list = models.JSONField(default=list, blank=True, help_text="Every entry the host listed.")
    chosen_files = models.JSONField(default=dict, blank=True, help_text="Per type: candidates, row counts, reason.")
    counts = models.JSONField(default=dict, blank=True)
    rejected_examples = models.JSONField(default=list, blank=True)
    records_before = models.IntegerField(null=True, blank=True)
    records_written = models.IntegerField(null=True, blank=True)
    processor_version = models.CharField(max_length=32, blank=True, default="")

    class Meta(Job.Meta):
        verbose_name = "fetch job"
        constraints = [
            models.UniqueConstraint(fields=["branch", "pos", "work_date"], name="etl_fetchjob_unique_day"),
        ]
        indexes = [*Job.Meta.indexes, models.Index(fields=["work_date", "branch", "pos"], name="etl_fetchjob_day_idx")]

    def job_title(self) -> str:
        return f"Fetch {self.branch.code} POS {self.pos} {self.work_date.isoformat()}"


class FetchedFile(models.Model):
    """A raw file kept from a fetch: the chosen one per type, or what a failed run got."""

    job = models.ForeignKey(FetchJob, on_delete=models.CASCADE, related_name="files")
    branch = models.ForeignKey(Branch, on_delete=models.CASCADE, related_name="files")
    attempt = models.PositiveIntegerField(default=1)
    filename = models.CharField(max_length=255)
    filetype = models.CharField(max_length=16)
    chosen = models.BooleanField(default=True)
    file = models.FileField(upload_to="etl/raw/", max_length=500)
    row_count = models.IntegerField(default=0)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job_id", "filetype", "filename"]

    def __str__(self) -> str:
        return self.filename


class Record(models.Model):
    """One sales line with its payment method (rd5000 joined with rd5500 on tnsc)."""

    # Records are a fact table written only by `etl.loading.records_replace` (keys taken from an
    # existing job). No single-column FK indexes and no database FK constraints: the
    # (work_date, branch, pos) index serves every lookup and the day replacement, while each
    # index and the per-row deferred FK triggers more than halve the COPY rate (bench/etl_load.py).
    # Deleting a job or branch still cascades (Django's collector does it, not the database).
    job = models.ForeignKey(FetchJob, on_delete=models.CASCADE, related_name="records", db_index=False,
                            db_constraint=False)
    branch = models.ForeignKey(Branch, on_delete=models.CASCADE, related_name="records", db_index=False,
                               db_constraint=False)
    pos = models.PositiveSmallIntegerField()
    work_date = models.DateField()
    line_no = models.IntegerField()
    tnsc = models.CharField(max_length=40)
    sale_date = models.DateField()
    sale_time = models.TimeField(null=True, blank=True)
    item_code = models.CharField(max_length=64)
    department = models.CharField(max_length=64, blank=True, default="")
    quantity = models.DecimalField(max_digits=14, decimal_places=3)
    amount = models.DecimalField(max_digits=16, decimal_places=2)
    payment_method = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["work_date", "branch_id", "pos", "line_no"]
        indexes = [
            models.Index(fields=["work_date", "branch", "pos"], name="etl_record_date_day_idx"),
            models.Index(fields=["item_code"], name="etl_record_item_idx"),
        ]


class RecordExport(Job):
    """CSV export of filtered records (or a whole year) produced in the background."""

    task_func = "etl.tasks.record_export_execute"
    title_fields = ("filters",)

    filters = models.JSONField(default=dict, blank=True)
    file = models.FileField(upload_to="etl/exports/", max_length=500, blank=True)
    row_count = models.IntegerField(default=0)

    class Meta(Job.Meta):
        verbose_name = "record export"

    def job_title(self) -> str:
        year = self.filters.get("year")
        return f"Records {year} export" if year else f"Records export #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("etl:recordexport_detail", args=[self.pk])


class AuditLog(models.Model):
    class Action(models.TextChoices):
        FETCH = "fetch", "Fetch"
        FORCE = "force", "Force refetch"
        RETRY = "retry", "Retry"
        CANCEL = "cancel", "Cancel"
        MISSING_RUN = "missing_run", "Queue missing"
        SCHEDULED = "scheduled", "Scheduled fetch"
        FINISHED = "finished", "Run finished"
        BRANCH_CREATE = "branch_create", "Branch created"
        BRANCH_UPDATE = "branch_update", "Branch config changed"
        EXPORT = "export", "Records export"

    job = models.ForeignKey(FetchJob, on_delete=models.CASCADE, null=True, blank=True, related_name="audit")
    branch = models.ForeignKey(Branch, on_delete=models.CASCADE, null=True, blank=True, related_name="audit")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    action = models.CharField(max_length=20, choices=Action.choices)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action}"

