"""Live export progress: the generic job stream plus rows written, estimate and download link."""

from django.urls import reverse

from core.consumers import JobStreamConsumer, job_snapshot
from trades.models import Export


class ExportStreamConsumer(JobStreamConsumer):
    def get_job(self, user, **url_kwargs):
        return Export.objects.filter(pk=url_kwargs.get("pk")).first()

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
