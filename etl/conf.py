"""Settings of the ETL app (core.appconf: read from the environment by config/settings.py as
`ETL_<NAME>`, read here when used). Each one is documented in `etl/README.md`.
"""

from pathlib import Path

from core.appconf import AppSettings, Setting

SETTINGS = AppSettings(
    "ETL",
    # Largest remote file accepted; a download that grows past it is aborted.
    MAX_FILE_BYTES=Setting("int", 50 * 1024 * 1024),
    # Most entries a remote listing may hold (a hostile host could list millions).
    MAX_LISTING_ENTRIES=Setting("int", 200),
    # Largest listing body accepted.
    MAX_LISTING_BYTES=Setting("int", 1024 * 1024),
    # HTTP: seconds per request, tries per request on 5xx / connection errors, first backoff.
    HTTP_TIMEOUT=Setting("float", 20.0),
    HTTP_RETRIES=Setting("int", 3),
    HTTP_BACKOFF=Setting("float", 0.5),
    # Requests per second per remote host (per worker process); 0 = unlimited.
    HTTP_RATE_LIMIT=Setting("float", 5.0),
    # Automatic re-runs of a job that failed on a transient error (host down, 5xx, timeout)
    # after its HTTP retries, and the first delay in seconds (doubled each time).
    JOB_AUTO_RETRIES=Setting("int", 2),
    JOB_RETRY_BACKOFF=Setting("int", 60),
    # How many rejected rows a job keeps as examples (all are counted).
    REJECT_EXAMPLES=Setting("int", 20),
    # Rows per INSERT batch on databases without COPY.
    BULK_BATCH_SIZE=Setting("int", 5000),
    # Largest sample accepted by "test parse".
    TEST_PARSE_MAX_BYTES=Setting("int", 5 * 1024 * 1024),
    # Most jobs one "fetch a date range" / "run missing" request may queue.
    MAX_JOBS_PER_REQUEST=Setting("int", 2000),
    # Longest range of the missing-data calendar, in days.
    CALENDAR_MAX_DAYS=Setting("int", 366),
    # Hour (server time zone) of the daily fetch of the previous day.
    DAILY_FETCH_HOUR=Setting("int", 6),
    # Username that owns scheduled fetches; empty = the first superuser.
    SCHEDULE_OWNER=Setting("str", ""),
    # Where `manage.py etl_demo` writes the generated demo POS host.
    DEMO_SOURCE_ROOT=Setting("str", lambda var_dir: str(var_dir / "etl-demo-source"), clean=Path),
)
__getattr__ = SETTINGS.get
