"""Settings of the trades app (core.appconf: read from the environment by config/settings.py as
`TRADES_<NAME>`, read here when used). Documented in trades/README.md.
"""

from core.appconf import AppSettings, Setting

SETTINGS = AppSettings(
    "TRADES",
    # How many exports may run at the same time (the others wait for a slot).
    EXPORT_CONCURRENCY=Setting("int", 2),
    # Retention: latest K files per user, files of at most N users, optional max age.
    EXPORT_KEEP_PER_USER=Setting("int", 1),
    EXPORT_KEEP_USERS=Setting("int", 5),
    EXPORT_MAX_AGE_HOURS=Setting("float", 0.0),  # 0 = no age limit
    # Storage folder of export files (inside the default storage).
    EXPORT_DIR=Setting("str", "trades/exports"),
    # gzip level of the "CSV gzip" format (1 fastest .. 9 smallest).
    EXPORT_GZIP_LEVEL=Setting("int", 1),
    # Rows per batch when streaming with a cursor (SQLite, Parquet).
    EXPORT_BATCH_ROWS=Setting("int", 50_000),
    # PostgreSQL, CSV / CSV gzip sorted by time or aggregated by a bucket: the export is cut into this
    # many disjoint timestamp slices read by concurrent COPYs (one connection each) and concatenated
    # in order (1 = a single COPY stream).
    EXPORT_STREAMS=Setting("int", 2),
    # PostgreSQL work_mem of the export's reading session ("" keeps the server default).
    EXPORT_WORK_MEM=Setting("str", "256MB"),
    # Seconds between two progress writes (also the cancellation check interval).
    EXPORT_PROGRESS_SECONDS=Setting("float", 0.5),
    # Preview: rows per page and the cap of the estimated count.
    PREVIEW_ROWS=Setting("int", 50),
    ESTIMATE_CAP=Setting("int", 1_000_000),
    # Oldest date the query page and API accept.
    MIN_DATE=Setting("str", "2015-07-01"),
    # Demo data loaded once by `manage.py setup_demo` (rows; 0 disables).
    DEMO_ROWS=Setting("int", 200_000),
    # Tests only (never set in production): while this file exists, a running export waits before it
    # writes rows, still honouring cancellation, so that end-to-end tests can cancel a running export
    # through the real API and worker deterministically.
    EXPORT_TEST_HOLD_FILE=Setting("str", ""),
)
__getattr__ = SETTINGS.get
