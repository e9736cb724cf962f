"""Settings of the backtest app, read from the environment (see README.md)."""

import os

import environ

env = environ.Env()

#: Base URL of the Binance REST API (tests point it at a fake server on 127.0.0.1).
BINANCE_URL = env.str("BACKTEST_BINANCE_URL", default="https://api.binance.com")
#: The scheduled fetch does nothing unless enabled (the embedded mode has no internet).
FETCH_ENABLED = env.bool("BACKTEST_FETCH_ENABLED", default=False)
#: Intervals the scheduled fetch keeps up to date for active crypto instruments.
FETCH_INTERVALS = env.list("BACKTEST_FETCH_INTERVALS", default=["1h"])
#: Where a fetch starts for an instrument without stored bars (ISO date, UTC).
FETCH_START = env.str("BACKTEST_FETCH_START", default="2024-01-01")
#: Upper bound of REST calls per instrument and interval in one fetch.
FETCH_MAX_CALLS = env.int("BACKTEST_FETCH_MAX_CALLS", default=500)
#: Seconds between two calls (Binance allows 6000 weight/min; klines weigh 2).
FETCH_PAUSE = env.float("BACKTEST_FETCH_PAUSE", default=0.1)
#: Longest wait honoured from a 429/418 `Retry-After` header, and retries per call.
FETCH_MAX_RETRY_AFTER = env.float("BACKTEST_FETCH_MAX_RETRY_AFTER", default=120.0)
FETCH_RETRIES = env.int("BACKTEST_FETCH_RETRIES", default=5)
#: Most bars one backtest may read.
MAX_BARS = env.int("BACKTEST_MAX_BARS", default=500_000)
#: Most parameter sets in one sweep (per instrument) and instruments per sweep.
SWEEP_MAX_COMBOS = env.int("BACKTEST_SWEEP_MAX_COMBOS", default=5_000)
SWEEP_MAX_INSTRUMENTS = env.int("BACKTEST_SWEEP_MAX_INSTRUMENTS", default=10)
#: Most points drawn in a chart (longer series are thinned, keeping extremes).
CHART_MAX_POINTS = env.int("BACKTEST_CHART_MAX_POINTS", default=2_000)
#: Worker processes evaluating a sweep's parameter sets (1 = in the job's own process).
SWEEP_PROCESSES = env.int("BACKTEST_SWEEP_PROCESSES", default=min(4, os.cpu_count() or 1))
#: How sweep workers start: "fork" (milliseconds; a worker inherits the job process's memory but only
#: runs numpy code and leaves with os._exit, never touching inherited connections) or "spawn" (a fresh
#: interpreter importing numpy/pandas: ~0.4 s of CPU per worker, seconds on a busy machine).
SWEEP_START_METHOD = env.str("BACKTEST_SWEEP_START_METHOD", default="fork")
#: Smallest sweep (bars × parameter sets, summed over instruments) worth starting worker processes
#: for: starting them costs ~0.4 s of CPU each, a bar-step of the engine ~65 ns.
SWEEP_PARALLEL_MIN_WORK = env.int("BACKTEST_SWEEP_PARALLEL_MIN_WORK", default=5_000_000)
#: Bar-steps per chunk handed to a worker (~0.1 s of work).
SWEEP_CHUNK_WORK = env.int("BACKTEST_SWEEP_CHUNK_WORK", default=2_000_000)
#: Largest CSV accepted by the bars upload (page and API), in bytes.
IMPORT_MAX_BYTES = env.int("BACKTEST_IMPORT_MAX_BYTES", default=20 * 1024 * 1024)
