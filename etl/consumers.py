"""Live ETL jobs over websockets.

`/ws/etl/jobs/<id>/?after=SEQ` — one fetch job (its detail page): core's job
stream protocol (`status` / `event` / `end`, resume after the last `seq`
seen), open to every signed-in user since ETL jobs are the team's; the
`status` snapshot carries the ETL columns (records, counts, attempt) and a
`cancel` message is honoured only for the job's owner or staff.

`/ws/etl/jobs/?ids=1,2,3` — live rows of many fetch jobs (jobs table, calendar cells):

Same doorbell-or-poll protocol as core's job stream, for many jobs at once:
the consumer joins each job's group, re-reads the rows when a bell rings or
after `poll_interval`, and sends the rows that changed:

  server → client  {"type": "job", "job": {"id", "status", "progress", "message", "branch_id", "pos", "work_date", …}}
                   {"type": "end"}   (every watched job has finished)
  client → server  {"type": "watch", "ids": [4, 5]}   (add jobs, e.g. just queued from the calendar)

ETL jobs are the team's: every signed-in user may watch them.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.db import close_old_connections

from django.core.exceptions import PermissionDenied, ValidationError

from core.consumers import CLOSE_UNAUTHENTICATED, CredentialsMixin, JobStreamConsumer, job_snapshot
from core.models import FINISHED_STATUSES
from core.services import job_group
from etl import selectors, services
from etl.models import FetchJob

MAX_IDS = 500
KIND = "etl.fetchjob"


def _ids(values) -> list[int]:
    out = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if part.isdigit():
                out.append(int(part))
    return out


class FetchJobRowsConsumer(CredentialsMixin, AsyncJsonWebsocketConsumer):
    poll_interval = 1.0

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.ids: list[int] = []
        self.last: dict[int, tuple] = {}
        self.wake = asyncio.Event()
        self.ended = False
        await self._watch(_ids(query.get("ids", [])))
        await self.accept()
        self.pump_task = asyncio.create_task(self.pump())

    async def _watch(self, ids: list[int]) -> None:
        for pk in ids:
            if pk not in self.ids and len(self.ids) < MAX_IDS:
                self.ids.append(pk)
                await self.channel_layer.group_add(job_group(kind=KIND, pk=pk), self.channel_name)

    async def disconnect(self, code):
        task = getattr(self, "pump_task", None)
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for pk in getattr(self, "ids", []):
            await self.channel_layer.group_discard(job_group(kind=KIND, pk=pk), self.channel_name)

    async def doorbell(self, event):
        self.wake.set()

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "watch" and isinstance(content.get("ids"), list):
            await self._watch(_ids(content["ids"][:MAX_IDS]))
            self.wake.set()
            task = getattr(self, "pump_task", None)
            if task is None or task.done():
                self.pump_task = asyncio.create_task(self.pump())

    def _read(self) -> list[dict] | None:
        close_old_connections()
        if not self.credentials_valid():
            return None
        return selectors.fetch_job_rows(ids=list(self.ids))

    async def pump(self):
        while True:
            self.wake.clear()
            rows = await database_sync_to_async(self._read)()
            if rows is None:
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
            for row in rows:
                signature = (row["status"], row["progress"], row["message"], row["records_written"])
                if self.last.get(row["id"]) != signature:
                    self.last[row["id"]] = signature
                    await self.send_json({"type": "job", "job": row})
            # The loop goes on after `end` (cheaply, once per poll_interval): it keeps checking the
            # socket's credentials, and picks up jobs watched later or re-run.
            if rows and len(rows) == len(self.ids) and all(r["status"] in FINISHED_STATUSES for r in rows):
                if not self.ended:
                    await self.send_json({"type": "end"})
                    self.ended = True
            else:
                self.ended = False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.poll_interval)


class FetchJobStreamConsumer(JobStreamConsumer):
    """One fetch job's status and events (`listed`, `step`, `downloaded`, `chosen`, `parsed`, `result`…)."""

    def get_job(self, user, **url_kwargs):
        return FetchJob.objects.select_related("branch").filter(pk=url_kwargs.get("pk")).first()

    def has_access(self, user, job) -> bool:
        # etl/README.md "Access rules": every signed-in user sees jobs (the team's data).
        return bool(user and user.is_authenticated)

    def snapshot(self, job) -> dict:
        data = job_snapshot(job)
        data.update(
            branch=job.branch.code, pos=job.pos, work_date=job.work_date.isoformat(),
            attempt_count=job.attempt_count, force=job.force, records_written=job.records_written,
            records_before=job.records_before, counts=job.counts,
        )
        return data

    def cancel(self, user, job) -> None:
        try:  # owner or staff only (services checks); others are ignored with an error frame
            services.fetch_cancel(user=user, job=job)
        except (PermissionDenied, ValidationError) as exc:
            self.refused = str(exc.messages[0] if isinstance(exc, ValidationError) else exc) or "Not allowed."

    async def receive_json(self, content, **kwargs):
        self.refused = ""
        await super().receive_json(content, **kwargs)
        if self.refused:
            await self.send_json({"type": "error", "error": self.refused})
