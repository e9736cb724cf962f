"""Settings of the backtest app (core.appconf: read from the environment by config/settings.py as
`BACKTEST_<NAME>`, read here when used). Documented in backtest/README.md.
"""

import os

from core.appconf import AppSettings, Setting

SETTINGS = AppSettings(
    "BACKTEST",
    # Base URL of the Binance REST API (tests point it at a fake server on 127.0.0.1).
    BINANCE_URL=Setting("str", "https://api.binance.com"),
    # The scheduled fetch does nothing unless enabled (the embedded mode has no internet).
    FETCH_ENABLED=Setting("bool", False),
    # Intervals the scheduled fetch keeps up to date for active crypto instruments.
    FETCH_INTERVALS=Setting("list", ["1h"]),
    # Where a fetch starts for an instrument without stored bars (ISO date, UTC).
    FETCH_START=Setting("str", "2024-01-01"),
    # Upper bound of REST calls per instrument and interval in one fetch.
    FETCH_MAX_CALLS=Setting("int", 500),
    # Seconds between two calls (Binance allows 6000 weight/min; klines weigh 2).
    FETCH_PAUSE=Setting("float", 0.1),
    # Longest wait honoured from a 429/418 `Retry-After` header, and retries per call.
    FETCH_MAX_RETRY_AFTER=Setting("float", 120.0),
    FETCH_RETRIES=Setting("int", 5),
    # Most bars one backtest may read.
    MAX_BARS=Setting("int", 500_000),
    # Most parameter sets in one sweep (per instrument) and instruments per sweep.
    SWEEP_MAX_COMBOS=Setting("int", 5_000),
    SWEEP_MAX_INSTRUMENTS=Setting("int", 10),
    # Most points drawn in a chart (longer series are thinned, keeping extremes).
    CHART_MAX_POINTS=Setting("int", 2_000),
    # Worker processes evaluating a sweep's parameter sets (1 = in the job's own process).
    SWEEP_PROCESSES=Setting("int", min(4, os.cpu_count() or 1)),
    # How sweep workers start: "fork" (milliseconds; a worker inherits the job process's memory but only
    # runs numpy code and leaves with os._exit, never touching inherited connections) or "spawn" (a fresh
    # interpreter importing numpy/pandas: ~0.4 s of CPU per worker, seconds on a busy machine).
    SWEEP_START_METHOD=Setting("str", "fork"),
    # Smallest sweep (bars × parameter sets, summed over instruments) worth starting worker processes
    # for: starting them costs ~0.4 s of CPU each, a bar-step of the engine ~65 ns.
    SWEEP_PARALLEL_MIN_WORK=Setting("int", 5_000_000),
    # Bar-steps per chunk handed to a worker (~0.1 s of work).
    SWEEP_CHUNK_WORK=Setting("int", 2_000_000),
    # Smallest sweep (bars × parameter sets, summed over instruments) split into chunk tasks that any
    # worker on any host takes, instead of one job process (with its own pool) doing all of it.
    SWEEP_SPLIT_MIN_WORK=Setting("int", 500_000_000),
    # Bar-steps per chunk task of a split sweep (~6 s of one core): small enough to spread over every
    # worker and to lose little when a worker dies, large enough that queueing costs nothing.
    SWEEP_TASK_WORK=Setting("int", 100_000_000),
    # Largest CSV accepted by the bars upload (page and API), in bytes.
    IMPORT_MAX_BYTES=Setting("int", 20 * 1024 * 1024),
    # Most instruments in one portfolio run.
    PORTFOLIO_MAX_INSTRUMENTS=Setting("int", 30),
)
__getattr__ = SETTINGS.get
