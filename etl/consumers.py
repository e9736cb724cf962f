"""Live ETL jobs over websockets (core.streams).

`/ws/etl/jobs/<id>/?after=SEQ` — one fetch job (its detail page): a job stream (`status` /
`event` / `end`, resume after the last `seq` seen); the `status` snapshot carries the ETL
columns (records, counts, attempt) and a `cancel` message is honoured only for the job's
owner or staff (`services.fetch_job_cancel`; others get an `error` frame).

`/ws/etl/jobs/?ids=1,2,3` — live rows of many fetch jobs (jobs table, calendar cells): the
consumer joins each job's group, re-reads the rows when a bell rings or after
`poll_interval`, and sends the rows that changed:

  server → client  {"type": "job", "job": {"id", "status", "progress", "message", "branch_id", "pos", "work_date", …}}
                   {"type": "end"}   (every watched job has finished)
  client → server  {"type": "watch", "ids": [4, 5]}   (add jobs, e.g. just queued from the calendar)

`/ws/etl/exports/<id>/?after=SEQ` — a record export (its owner and staff).

Who may watch is `selectors.fetch_job_visible_to` (every signed-in user: ETL jobs are the team's),
the same rule as the pages and the API.
"""

from __future__ import annotations

from core.models import FINISHED_STATUSES
from core.services import stream_group
from core.streams import JobStream, Read, StreamConsumer, job_snapshot, query_params
from etl import selectors, services
from etl.models import FetchJob

MAX_IDS = 500


def _ids(values) -> list[int]:
    out = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if part.isdigit() and len(part) < 19:
                out.append(int(part))
    return out


class FetchJobRowsStream(StreamConsumer):
    app, kind, collection = "etl", "jobs", True
    poll_interval = 1.0
    # The loop goes on after `end` (cheaply, once per poll_interval): it keeps checking the
    # socket's credentials, and picks up jobs watched later or re-run.
    read_after_end = True

    def open(self, user) -> int | None:
        self.ids: list[int] = []
        self.last: dict[int, tuple] = {}
        self._add(_ids(query_params(self.scope).get("ids", [])))
        return None

    def _add(self, ids: list[int]) -> list[int]:
        added = []
        for pk in ids:
            if pk not in self.ids and len(self.ids) < MAX_IDS:
                self.ids.append(pk)
                added.append(pk)
        return added

    def stream_groups(self) -> list[str]:
        return [stream_group(kind=FetchJob._meta.label_lower, pk=pk) for pk in self.ids]

    def read(self) -> Read:
        rows = selectors.fetch_job_rows(user=self.scope["user"], ids=list(self.ids))
        messages = []
        for row in rows:
            signature = (row["status"], row["progress"], row["message"], row["records_written"])
            if self.last.get(row["id"]) != signature:
                self.last[row["id"]] = signature
                messages.append({"type": "job", "job": row})
        finished = bool(rows) and len(rows) == len(self.ids) and all(r["status"] in FINISHED_STATUSES for r in rows)
        return Read(messages=messages, finished=finished)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "watch" and isinstance(content.get("ids"), list):
            added = self._add(_ids(content["ids"][:MAX_IDS]))
            await self.join([stream_group(kind=FetchJob._meta.label_lower, pk=pk) for pk in added])
            self.restart()


class FetchJobStream(JobStream):
    """One fetch job's status and events (`listed`, `step`, `downloaded`, `chosen`, `parsed`, `result`…)."""

    app, kind = "etl", "jobs"

    def load(self, user, pk):
        return selectors.fetch_job_get_for_viewer(user=user, pk=pk)

    def snapshot(self, job) -> dict:
        data = job_snapshot(job)
        data.update(
            branch=job.branch.code, pos=job.pos, work_date=job.work_date.isoformat(),
            attempt_count=job.attempt_count, force=job.force, records_written=job.records_written,
            records_before=job.records_before, counts=job.counts,
        )
        return data

    def cancel(self, user, job) -> None:
        services.fetch_job_cancel(user=user, job=job)


class RecordExportStream(JobStream):
    app, kind = "etl", "exports"

    def load(self, user, pk):
        return selectors.record_export_get_for_viewer(user=user, pk=pk)
