"""Live log of a run: the core job stream protocol, events read from LogChunk."""

from core.consumers import JobStreamConsumer, job_snapshot
from scripts_runner import selectors
from scripts_runner.models import ScriptRun


def run_snapshot(run: ScriptRun) -> dict:
    data = job_snapshot(run)
    data.update(
        exit_code=run.exit_code,
        end_reason=run.end_reason,
        end_description=run.end_description,
        output_lines=run.output_lines,
        truncated=run.truncated,
    )
    return data


class RunLogConsumer(JobStreamConsumer):
    batch_size = 200

    def get_job(self, user, **url_kwargs):
        return ScriptRun.objects.select_related("cancelled_by").filter(pk=url_kwargs.get("pk")).first()

    def read_events(self, job, after):
        return [chunk.as_message() for chunk in selectors.log_chunks_after(run=job, after=after, limit=self.batch_size)]

    def snapshot(self, job):
        return run_snapshot(job)

    def cancel(self, user, job):
        from scripts_runner import services

        services.run_cancel(run=job, by=user)
