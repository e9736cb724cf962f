"""Settings of the trades app, read from the environment with safe defaults."""

import environ

env = environ.Env()

# How many exports may run at the same time (the others wait for a slot).
EXPORT_CONCURRENCY = env.int("TRADES_EXPORT_CONCURRENCY", default=2)
# Retention: latest K files per user, files of at most N users, optional max age.
EXPORT_KEEP_PER_USER = env.int("TRADES_EXPORT_KEEP_PER_USER", default=1)
EXPORT_KEEP_USERS = env.int("TRADES_EXPORT_KEEP_USERS", default=5)
EXPORT_MAX_AGE_HOURS = env.float("TRADES_EXPORT_MAX_AGE_HOURS", default=0.0)  # 0 = no age limit
# Storage folder of export files (inside the default storage).
EXPORT_DIR = env.str("TRADES_EXPORT_DIR", default="trades/exports")
# gzip level of the "CSV gzip" format (1 fastest .. 9 smallest).
EXPORT_GZIP_LEVEL = env.int("TRADES_EXPORT_GZIP_LEVEL", default=1)
# Rows per batch when streaming with a cursor (SQLite, Parquet).
EXPORT_BATCH_ROWS = env.int("TRADES_EXPORT_BATCH_ROWS", default=50_000)
# PostgreSQL, CSV / CSV gzip sorted by time or aggregated by a bucket: the export is cut into this
# many disjoint timestamp slices read by concurrent COPYs (one connection each) and concatenated
# in order (1 = a single COPY stream).
EXPORT_STREAMS = env.int("TRADES_EXPORT_STREAMS", default=2)
# PostgreSQL work_mem of the export's reading session ("" keeps the server default).
EXPORT_WORK_MEM = env.str("TRADES_EXPORT_WORK_MEM", default="256MB")
# Seconds between two progress writes (also the cancellation check interval).
EXPORT_PROGRESS_SECONDS = env.float("TRADES_EXPORT_PROGRESS_SECONDS", default=0.5)
# Preview: rows per page and the cap of the estimated count.
PREVIEW_ROWS = env.int("TRADES_PREVIEW_ROWS", default=50)
ESTIMATE_CAP = env.int("TRADES_ESTIMATE_CAP", default=1_000_000)
# Oldest date the query page and API accept.
MIN_DATE = env.str("TRADES_MIN_DATE", default="2015-07-01")
# Demo data loaded once by `manage.py setup_demo` (rows; 0 disables).
DEMO_ROWS = env.int("TRADES_DEMO_ROWS", default=200_000)
# Tests only (never set in production): while this file exists, a running export waits before it
# writes rows, still honouring cancellation, so that end-to-end tests can cancel a running export
# through the real API and worker deterministically.
EXPORT_TEST_HOLD_FILE = env.str("TRADES_EXPORT_TEST_HOLD_FILE", default="")
