"""Live export progress: `/ws/trades/exports/<id>/?after=SEQ`, a job stream plus rows written, estimate
and download link."""

from django.urls import reverse

from core.streams import JobStream, job_snapshot
from trades import selectors


class ExportStream(JobStream):
    app, kind = "trades", "exports"

    def load(self, user, pk):
        return selectors.export_get_for_viewer(user=user, pk=pk)

    def snapshot(self, job):
        data = job_snapshot(job)
        data.update(
            message=job.status_message,
            queue_position=job.queue_position,
            rows_written=job.rows_written,
            estimated_rows=job.estimated_rows,
            size_bytes=job.size_bytes,
            available=job.is_available,
            download_url=reverse("trades:export_download", args=[job.pk]) if job.is_available else None,
        )
        return data

    def cancel(self, user, job):
        from trades import services

        services.export_cancel(export=job, by=user)
