"""Live log of a run: `/ws/scripts/runs/<id>/?after=SEQ`, a job stream whose events are the run's log chunks."""

from core.streams import JobStream, job_snapshot
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


class RunLogStream(JobStream):
    app, kind = "scripts", "runs"
    batch_size = 200

    def load(self, user, pk):
        return selectors.run_get_for_viewer(user=user, pk=pk)

    def read_after(self, obj, after):
        return [chunk.as_message() for chunk in selectors.log_chunks_after(run=obj, after=after, limit=self.batch_size)]

    def snapshot(self, obj):
        return run_snapshot(obj)

    def cancel(self, user, job):
        from scripts_runner import services

        services.script_run_cancel(run=job, by=user)
