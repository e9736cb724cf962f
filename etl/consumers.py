"""Live rows of fetch jobs (jobs table, calendar cells): `/ws/etl/jobs/?ids=1,2,3`.

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

from core.consumers import CLOSE_UNAUTHENTICATED
from core.models import FINISHED_STATUSES
from core.services import job_group
from etl import selectors

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


class FetchJobRowsConsumer(AsyncJsonWebsocketConsumer):
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

    def _read(self) -> list[dict]:
        close_old_connections()
        return selectors.fetch_job_rows(ids=list(self.ids))

    async def pump(self):
        while True:
            self.wake.clear()
            rows = await database_sync_to_async(self._read)()
            for row in rows:
                signature = (row["status"], row["progress"], row["message"], row["records_written"])
                if self.last.get(row["id"]) != signature:
                    self.last[row["id"]] = signature
                    await self.send_json({"type": "job", "job": row})
            if rows and len(rows) == len(self.ids) and all(r["status"] in FINISHED_STATUSES for r in rows):
                await self.send_json({"type": "end"})
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.poll_interval)
