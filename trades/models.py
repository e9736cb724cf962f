from django.db import models
from django.db.models import Q

from core.models import Job, JobStatus


class Exchange(models.Model):
    """A trading venue, keyed by the numeric id used in the trades flat files."""

    id = models.PositiveIntegerField(primary_key=True)
    name = models.CharField(max_length=100)
    acronym = models.CharField(max_length=20, blank=True, default="")
    mic = models.CharField(max_length=10, blank=True, default="")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.acronym or self.name} ({self.id})"


class Trade(models.Model):
    """One historical trade. Timestamps are integer nanoseconds since the Unix epoch (UTC)."""

    ticker = models.CharField(max_length=16)
    exchange = models.ForeignKey(Exchange, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    participant_timestamp = models.BigIntegerField(help_text="nanoseconds since epoch, UTC")
    price = models.FloatField()
    size = models.BigIntegerField()
    del_t = models.BigIntegerField(null=True, blank=True, help_text="ns since the previous trade of the ticker")
    del_p = models.FloatField(null=True, blank=True, help_text="price change since the previous trade of the ticker")

    class Meta:
        indexes = [
            models.Index(fields=["ticker", "participant_timestamp"], name="trades_ticker_ts"),
            models.Index(fields=["exchange", "participant_timestamp"], name="trades_exchange_ts"),
            models.Index(fields=["participant_timestamp", "id"], name="trades_ts_id"),
        ]

    def __str__(self) -> str:
        return f"{self.ticker} {self.size}@{self.price}"


class LoadedFile(models.Model):
    """A trades file already imported (makes `load_trades` idempotent)."""

    sha256 = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=500)
    rows_loaded = models.BigIntegerField(default=0)
    rows_bad = models.BigIntegerField(default=0)
    loaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    CSV_GZ = "csv_gz", "CSV gzip"
    PARQUET = "parquet", "Parquet"


FORMAT_EXTENSIONS = {ExportFormat.CSV: "csv", ExportFormat.CSV_GZ: "csv.gz", ExportFormat.PARQUET: "parquet"}
FORMAT_CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv",
    ExportFormat.CSV_GZ: "application/gzip",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
}


WAITING_MESSAGE = "Queued — waiting for a free export slot"


class Export(Job):
    """A background export of filtered / computed / bucketed trades to a file."""

    task_func = "trades.tasks.export_run"
    title_fields = ("format",)
    # Re-running writes the same file again under a new name; harmless, but a
    # lost job is better failed visibly than silently repeated for hours.
    requeue_safe = False

    signature = models.CharField(max_length=64, db_index=True)
    params = models.JSONField(default=dict, help_text="normalized request")
    format = models.CharField(max_length=10, choices=ExportFormat.choices, default=ExportFormat.CSV)
    estimated_rows = models.BigIntegerField(null=True, blank=True)
    rows_written = models.BigIntegerField(default=0)
    file_name = models.CharField(max_length=300, blank=True, default="", help_text="name in the default storage")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    expired_at = models.DateTimeField(null=True, blank=True)
    # Concurrency slot held while running (unique: at most EXPORT_CONCURRENCY rows hold one).
    slot = models.PositiveSmallIntegerField(null=True, blank=True)
    # Set while a queued export waits for a slot without a task (no worker held); the export
    # that frees a slot hands it over and queues the task again (trades.slots).
    parked_at = models.DateTimeField(null=True, blank=True)

    class Meta(Job.Meta):
        constraints = [
            models.UniqueConstraint(fields=["slot"], condition=Q(slot__isnull=False), name="trades_export_unique_slot"),
            models.UniqueConstraint(
                fields=["owner", "signature"],
                condition=Q(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]),
                name="trades_export_one_active_per_signature",
            ),
        ]
        indexes = [*Job.Meta.indexes,
                   models.Index(fields=["owner", "status", "finished_at"], name="trades_export_owner_fin")]

    def job_title(self) -> str:
        return f"Trade export #{self.pk} ({self.get_format_display()})"

    @property
    def is_waiting_for_slot(self) -> bool:
        return self.status == JobStatus.QUEUED and self.parked_at is not None and self.slot is None

    @property
    def queue_position(self) -> int | None:
        """1-based place among the exports waiting for a free slot (None when not waiting).

        Lists set it for all their rows from one query (`trades.slots.queue_positions_attach`);
        otherwise it is counted here.
        """
        if not self.is_waiting_for_slot:
            return None
        if "_attached_position" in self.__dict__:
            return self.__dict__["_attached_position"]
        ahead = Export.objects.filter(status=JobStatus.QUEUED, slot=None, parked_at__isnull=False).filter(
            Q(created_at__lt=self.created_at) | Q(created_at=self.created_at, pk__lt=self.pk)
        )
        return ahead.count() + 1

    @queue_position.setter
    def queue_position(self, value: int | None) -> None:
        self.__dict__["_attached_position"] = value

    def refresh_from_db(self, *args, **kwargs):
        self.__dict__.pop("_attached_position", None)
        super().refresh_from_db(*args, **kwargs)

    @property
    def status_message(self) -> str:
        position = self.queue_position
        if position is not None:
            return f"{WAITING_MESSAGE} (position {position})"
        return self.message

    @property
    def is_available(self) -> bool:
        return self.status == JobStatus.SUCCEEDED and self.expired_at is None and bool(self.file_name)

    @property
    def download_filename(self) -> str:
        stamp = (self.finished_at or self.created_at).strftime("%Y%m%d-%H%M%S")
        return f"trades_{self.pk}_{stamp}.{FORMAT_EXTENSIONS[self.format]}"
