"""A sweep's parameter sets evaluated in a pool of worker processes.

Django-free on purpose: a worker only runs the numpy engine. Workers are
forked by default (`BACKTEST_SWEEP_START_METHOD`): they start in milliseconds,
never use the database connections or threads they inherit, and leave through
`os._exit` (or are killed), so nothing inherited is closed or flushed twice.
With "spawn" they are fresh interpreters that import only this module and the
engine (~0.4 s of CPU each).

- Price arrays reach each worker once per instrument: the parent writes them to
  a private temporary directory (`.npy`), a worker loads them on its first chunk
  of that instrument and keeps them (with its indicator cache) for the next
  chunks; tasks carry only parameter sets.
- Parameter sets go out in chunks, one per idle worker, over a pipe per worker;
  results come back in completion order. `run` yields `None` ticks while it waits so
  the caller can flush, report progress and check for cancel.
- Leaving the `with` block (normally, on cancel or on any error) terminates the
  workers and removes the directory. Workers also die with their parent
  (Linux `PR_SET_PDEATHSIG`, plus a parent-pid watch), so a killed job process
  leaves no pool behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass
from multiprocessing.connection import wait as mp_wait
from typing import Any

import numpy as np

from backtest import conf
from backtest.engine import Bars, Costs, run_backtest
from backtest.indicators import IndicatorCache
from backtest.strategies import strategy_get


class SweepWorkerLost(RuntimeError):
    """A worker process died (killed, out of memory) while it held a chunk."""


@dataclass
class Chunk:
    key: str  # names the bars file of the instrument
    costs: Costs
    annual_days: int
    items: list[tuple[int, dict]]  # (index in the sweep's parameter sets, params)
    meta: Any = None  # returned with each result (the instrument)


# --- worker side -----------------------------------------------------------------------

_worker: dict[str, Any] = {"dir": None, "key": None, "bars": None, "cache": None}


def _die_with_parent(parent_pid: int) -> None:
    try:  # Linux: the kernel kills us when the parent dies, however it dies
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _init_worker(parent_pid: int, directory: str) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business: it tears the pool down
    _worker["dir"] = directory


def _worker_bars(key: str) -> tuple[Bars, IndicatorCache]:
    if _worker["key"] != key:
        _worker.update(key=None, bars=None, cache=None)  # release the previous instrument first
        base = os.path.join(_worker["dir"], key)
        times = np.load(base + ".time.npy")
        ohlcv = np.load(base + ".ohlcv.npy")
        bars = Bars(times, *(np.ascontiguousarray(ohlcv[i]) for i in range(5)))
        _worker.update(key=key, bars=bars, cache=IndicatorCache())
    return _worker["bars"], _worker["cache"]


def _run_chunk(key: str, strategy_key: str, costs: tuple, annual_days: int,
               items: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
    bars, cache = _worker_bars(key)
    strategy, costs_obj = strategy_get(strategy_key), Costs(*costs)
    return [
        (index, run_backtest(bars=bars, strategy=strategy, params=params, costs=costs_obj,
                             annual_days=annual_days, cache=cache).metrics)
        for index, params in items
    ]


# --- parent side -----------------------------------------------------------------------


def sweep_processes(*, work: int, combos: int) -> int:
    """Worker processes for a sweep of `work` bar-steps (bars × parameter sets): 1 (in the job's
    own process) when configured so or when the sweep is too small to repay starting workers."""
    processes = max(1, conf.SWEEP_PROCESSES)
    if processes == 1 or work < conf.SWEEP_PARALLEL_MIN_WORK:
        return 1
    return min(processes, max(1, combos))


def chunk_size(*, bars: int, combos: int, processes: int, chunk_work: int) -> int:
    """Parameter sets per chunk: about `chunk_work` bar-steps (a fraction of a second), and at
    least four chunks per process so work stays balanced and results keep streaming."""
    by_work = max(1, chunk_work // max(bars, 1))
    balanced = max(1, -(-combos // (processes * 4)))
    return int(max(1, min(by_work, balanced)))


@dataclass
class _Worker:
    process: Any
    conn: Any


def _worker_main(conn, parent_pid: int, directory: str) -> None:
    """A worker's loop: receive a chunk, send back its metrics (or the error), until told to stop."""
    _init_worker(parent_pid, directory)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the parent closed its end
            return
        if task is None:
            return
        try:
            reply = ("ok", _run_chunk(*task))
        except BaseException as exc:  # sent back to the job, which fails with it
            reply = ("error", exc)
        try:
            conn.send(reply)
        except Exception as exc:  # e.g. an exception that cannot be pickled
            conn.send(("error", RuntimeError(f"{type(reply[1]).__name__}: {reply[1]} ({exc})")))


class SweepPool:
    """Worker processes, each with its own pipe: one chunk per worker at a time, no helper threads
    (so nothing can deadlock when a worker is killed, unlike concurrent.futures' pool)."""

    def __init__(self, *, processes: int, strategy: str, tick: float = 0.25):
        self.processes = processes
        self.strategy = strategy
        self.tick = tick
        self._dir: str | None = None
        self._workers: list[_Worker] = []

    # context management: the pool lives exactly as long as the block
    def __enter__(self) -> SweepPool:
        self._dir = tempfile.mkdtemp(prefix="backtest-sweep-")
        try:
            ctx = multiprocessing.get_context(conf.SWEEP_START_METHOD)
            for _ in range(self.processes):
                parent_end, child_end = ctx.Pipe()
                process = ctx.Process(target=_worker_main, args=(child_end, os.getpid(), self._dir),
                                      name="backtest-sweep-worker", daemon=True)
                process.start()
                child_end.close()
                self._workers.append(_Worker(process, parent_end))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid]

    def wait_started(self, timeout: float = 60) -> None:
        """Workers start in __enter__; spawned ones finish importing when they take their first chunk."""

    def close(self) -> None:
        """Terminate the workers (whatever they are doing) and remove the bars files."""
        workers, self._workers = self._workers, []
        try:
            for w in workers:
                with contextlib.suppress(Exception):
                    w.process.terminate()
            deadline = time.monotonic() + 5
            for w in workers:
                with contextlib.suppress(Exception):
                    w.process.join(timeout=max(0.1, deadline - time.monotonic()))
                    if w.process.is_alive():
                        w.process.kill()
                        w.process.join(timeout=2)
                with contextlib.suppress(Exception):
                    w.conn.close()
                with contextlib.suppress(Exception):
                    w.process.close()
        finally:
            if self._dir:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    def add_bars(self, key: str, bars: Bars) -> None:
        base = os.path.join(self._dir, key)
        np.save(base + ".time.npy", np.asarray(bars.time, dtype=np.int64))
        np.save(base + ".ohlcv.npy", np.vstack([bars.open, bars.high, bars.low, bars.close, bars.volume]))

    def run(self, chunks: Iterable[Chunk]) -> Iterator[tuple[Any, int, dict] | None]:
        """Yield (chunk.meta, index, metrics) per backtest in completion order, or None every
        `tick` seconds without a result. Chunks are drawn lazily, one per idle worker."""
        source = iter(chunks)
        idle = list(self._workers)
        busy: dict = {}  # connection -> (worker, chunk)
        lost = "A sweep worker process died (killed or out of memory); the sweep was stopped."

        def dispatch() -> None:
            while idle:
                chunk = next(source, None)
                if chunk is None:
                    return
                worker = idle.pop()
                try:
                    worker.conn.send((chunk.key, self.strategy, astuple(chunk.costs), chunk.annual_days, chunk.items))
                except OSError as exc:
                    raise SweepWorkerLost(lost) from exc
                busy[worker.conn] = (worker, chunk)

        dispatch()
        while busy:
            sentinels = {w.process.sentinel: w for w, _ in busy.values()}
            ready = mp_wait(list(busy) + list(sentinels), timeout=self.tick)
            if not ready:
                yield None
                continue
            replies = [r for r in ready if r in busy]
            if not replies:  # only a sentinel: a worker died holding a chunk
                raise SweepWorkerLost(lost)
            for conn in replies:
                worker, chunk = busy.pop(conn)
                try:
                    status, payload = conn.recv()
                except (EOFError, OSError) as exc:
                    raise SweepWorkerLost(lost) from exc
                if status != "ok":
                    raise payload
                idle.append(worker)
                dispatch()
                for index, metrics in payload:
                    yield chunk.meta, index, metrics
