"""Settings of the ETL app, read from the environment with safe local defaults.

Each one is documented in `etl/README.md`.
"""

from pathlib import Path

import environ
from django.conf import settings

env = environ.Env()


def _var_dir() -> Path:
    return Path(getattr(settings, "VAR_DIR", Path.cwd() / "var"))


# Largest remote file accepted; a download that grows past it is aborted.
MAX_FILE_BYTES = env.int("ETL_MAX_FILE_BYTES", default=50 * 1024 * 1024)
# Most entries a remote listing may hold (a hostile host could list millions).
MAX_LISTING_ENTRIES = env.int("ETL_MAX_LISTING_ENTRIES", default=200)
# Largest listing body accepted.
MAX_LISTING_BYTES = env.int("ETL_MAX_LISTING_BYTES", default=1024 * 1024)
# HTTP: seconds per request, tries per request on 5xx / connection errors, first backoff.
HTTP_TIMEOUT = env.float("ETL_HTTP_TIMEOUT", default=20.0)
HTTP_RETRIES = env.int("ETL_HTTP_RETRIES", default=3)
HTTP_BACKOFF = env.float("ETL_HTTP_BACKOFF", default=0.5)
# Requests per second per remote host (per worker process); 0 = unlimited.
HTTP_RATE_LIMIT = env.float("ETL_HTTP_RATE_LIMIT", default=5.0)
# Automatic re-runs of a job that failed on a transient error (host down, 5xx, timeout)
# after its HTTP retries, and the first delay in seconds (doubled each time).
JOB_AUTO_RETRIES = env.int("ETL_JOB_AUTO_RETRIES", default=2)
JOB_RETRY_BACKOFF = env.int("ETL_JOB_RETRY_BACKOFF", default=60)
# How many rejected rows a job keeps as examples (all are counted).
REJECT_EXAMPLES = env.int("ETL_REJECT_EXAMPLES", default=20)
# Rows per INSERT batch on databases without COPY.
BULK_BATCH_SIZE = env.int("ETL_BULK_BATCH_SIZE", default=5000)
# Largest sample accepted by "test parse".
TEST_PARSE_MAX_BYTES = env.int("ETL_TEST_PARSE_MAX_BYTES", default=5 * 1024 * 1024)
# Most jobs one "fetch a date range" / "run missing" request may queue.
MAX_JOBS_PER_REQUEST = env.int("ETL_MAX_JOBS_PER_REQUEST", default=2000)
# Longest range of the missing-data calendar, in days.
CALENDAR_MAX_DAYS = env.int("ETL_CALENDAR_MAX_DAYS", default=366)
# Hour (server time zone) of the daily fetch of the previous day.
DAILY_FETCH_HOUR = env.int("ETL_DAILY_FETCH_HOUR", default=6)
# Username that owns scheduled fetches; empty = the first superuser.
SCHEDULE_OWNER = env.str("ETL_SCHEDULE_OWNER", default="")


def demo_source_root() -> Path:
    """Where `manage.py etl_demo` writes the generated demo POS host."""
    return Path(env.str("ETL_DEMO_SOURCE_ROOT", default=str(_var_dir() / "etl-demo-source")))
