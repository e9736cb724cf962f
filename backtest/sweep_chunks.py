"""A large sweep split into chunk tasks that any worker on any host can take.

`backtest.services.sweep_execute` hands a sweep of at least `BACKTEST_SWEEP_SPLIT_MIN_WORK` bar-steps
to `sweep_chunks_enqueue`: one django-q2 task per run of parameter sets of one instrument (about
`BACKTEST_SWEEP_TASK_WORK` bar-steps each). Each `sweep_chunk_execute` runs its parameter sets with the
in-process engine and writes results in batches:

- Rows are keyed by (sweep, instrument, combination index): a chunk run twice (its task delivered again
  after its worker died) stores and counts only what is missing.
- The sweep's `done` is the one counter. A batch adds its new rows under the sweep row's lock (the
  UPDATE that also beats the sweep's heartbeat); the batch that brings `done` to `total` finishes the
  sweep. No task waits for the others.
- Every batch checks the sweep: a cancel ends the sweep cancelled (the first chunk that sees it), and
  the other chunks stop at their next batch or, still queued, return at once; a sweep no longer running
  (failed by the recovery pass, deleted) stops them the same way.
- Results stream as today: each batch appends `result` events to the sweep's job stream.

The sweep is tied to no worker instance once split (its `worker_id` is cleared), so the recovery pass
judges it by the heartbeat the chunks beat. While chunks wait in the queue nobody beats the sweep's heartbeat: a split sweep whose chunks wait longer
than `JOB_HEARTBEAT_STALE_SECONDS` for a free worker is failed by the recovery pass.
"""

from __future__ import annotations

import time

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from backtest import conf, selectors
from backtest.engine import run_backtest
from backtest.indicators import IndicatorCache
from backtest.models import Instrument, Sweep, SweepResult
from backtest.run_inputs import bars_load_checked, costs_for
from backtest.strategies import strategy_get
from core.jobkit import error_for_users
from core.models import JobStatus
from core.services import (
    JobAbandoned, JobCancelled, job_events_add, job_fail, job_mark_cancelled, job_progress, job_ring, job_succeed,
)

CHUNK_TASK = "backtest.tasks.sweep_chunk_execute"


def sweep_chunks_plan(*, sweep: Sweep, bar_counts: dict[int, int]) -> list[tuple[int, int, int]]:
    """(instrument id, first, end) of each chunk: about `SWEEP_TASK_WORK` bar-steps of one instrument."""
    combos = len(sweep.param_sets)
    chunks = []
    for instrument_id, bars in sorted(bar_counts.items()):
        size = max(1, conf.SWEEP_TASK_WORK // max(bars, 1))
        chunks.extend((instrument_id, first, min(first + size, combos)) for first in range(0, combos, size))
    return chunks


def sweep_chunks_enqueue(*, sweep: Sweep, bar_counts: dict[int, int]) -> int:
    """Queue the sweep's chunk tasks after the current transaction commits; answers how many."""
    from django_q.tasks import async_task

    chunks = sweep_chunks_plan(sweep=sweep, bar_counts=bar_counts)
    # The sweep no longer runs on this worker instance: its chunks run on any, and beat its heartbeat.
    Sweep.objects.filter(pk=sweep.pk).update(worker_id="")
    job_progress(job=sweep, fraction=0.0, message=f"Starting {sweep.total:,} backtests in {len(chunks)} tasks")

    def send() -> None:
        for number, (instrument_id, first, end) in enumerate(chunks, 1):
            async_task(CHUNK_TASK, sweep.pk, instrument_id, first, end,
                       task_name=f"{sweep.kind}:{sweep.pk}:chunk{number}")

    transaction.on_commit(send)
    return len(chunks)


def _summary(sweep: Sweep, done: int) -> str:
    text = f"{done:,} backtests done in chunk tasks"
    best = selectors.sweep_results_sorted(sweep=sweep, metric="sharpe", descending=True, limit=1)
    sharpe = best[0].metrics.get("sharpe") if best else None
    if sharpe is not None:
        text += f"; best Sharpe {sharpe:.2f}"
    return text


def _write(sweep: Sweep, instrument: Instrument, batch: list[tuple[int, dict]]) -> tuple[int, bool]:
    """Store the batch's new results and count them; answers (done, finished). Raises JobCancelled or
    JobAbandoned when the sweep must stop (the batch is then not stored)."""
    with transaction.atomic():
        # The UPDATE takes the sweep row's lock: batches of every chunk are counted one at a time.
        if not Sweep.objects.filter(pk=sweep.pk, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now()):
            raise JobAbandoned(f"{sweep.job_title()} no longer runs.")
        done, total, cancel = Sweep.objects.filter(pk=sweep.pk).values_list("done", "total", "cancel_requested").get()
        if cancel:
            raise JobCancelled()
        stored = set(SweepResult.objects.filter(sweep=sweep, instrument=instrument, index__in=[i for i, _ in batch])
                     .values_list("index", flat=True))
        fresh = [(index, metrics) for index, metrics in batch if index not in stored]
        rows = [SweepResult(sweep=sweep, seq=done + n, instrument=instrument, index=index,
                            params=sweep.param_sets[index], metrics=metrics)
                for n, (index, metrics) in enumerate(fresh, 1)]
        if rows:
            from backtest.services import _live

            SweepResult.objects.bulk_create(rows)
            Sweep.objects.filter(pk=sweep.pk).update(done=F("done") + len(rows))
            job_events_add(job=sweep, events=[("result", {
                "seq": row.seq, "instrument": instrument.symbol, "instrument_id": instrument.pk,
                "params": row.params, "metrics": _live(row.metrics),
            }) for row in rows])
        done += len(rows)
    return done, done >= total


def sweep_chunk_execute(*, sweep_pk: int, instrument_pk: int, first: int, end: int,
                        flush_seconds: float = 0.3, flush_rows: int = 200) -> int:
    """Run parameter sets `first`..`end - 1` of a split sweep on one instrument; answers how many it stored."""
    sweep = Sweep.objects.filter(pk=sweep_pk).first()
    if sweep is None or sweep.status != JobStatus.RUNNING:
        return 0  # cancelled, failed or finished meanwhile
    stored = 0
    try:
        if sweep.cancel_requested:
            raise JobCancelled()
        instrument = Instrument.objects.get(pk=instrument_pk)
        have = set(SweepResult.objects.filter(sweep=sweep, instrument=instrument, index__gte=first, index__lt=end)
                   .values_list("index", flat=True))
        todo = [index for index in range(first, end) if index not in have]
        if not todo:
            return 0
        bars = bars_load_checked(instrument=instrument, interval=sweep.interval, start=sweep.start, end=sweep.end,
                                 field="instruments")
        costs = costs_for(instrument=instrument, commission_bps=sweep.commission_bps,
                          slippage_bps=sweep.slippage_bps, initial_cash=sweep.initial_cash)
        strat, cache = strategy_get(sweep.strategy), IndicatorCache()
        batch: list[tuple[int, dict]] = []
        last = time.monotonic()
        for position, index in enumerate(todo, 1):
            result = run_backtest(bars=bars, strategy=strat, params=sweep.param_sets[index], costs=costs,
                                  annual_days=instrument.annual_days, cache=cache)
            batch.append((index, result.metrics))
            if position == len(todo) or len(batch) >= flush_rows or time.monotonic() - last >= flush_seconds:
                done, finished = _write(sweep, instrument, batch)
                stored += len(batch)
                batch, last = [], time.monotonic()
                if finished:
                    sweep.refresh_from_db()
                    job_succeed(job=sweep, message=_summary(sweep, done), done=done)
                else:
                    job_progress(job=sweep, fraction=done / max(sweep.total, 1),
                                 message=f"{done:,} of {sweep.total:,} backtests")
    except JobCancelled:
        if Sweep.objects.filter(pk=sweep.pk, status=JobStatus.RUNNING).exists():
            job_mark_cancelled(job=sweep)
    except JobAbandoned:
        pass
    except Exception as exc:
        if Sweep.objects.filter(pk=sweep.pk, status=JobStatus.RUNNING).exists():
            job_fail(job=sweep, error=error_for_users(exc))
        else:
            job_ring(job=sweep)
        raise
    return stored
