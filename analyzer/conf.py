"""Settings of the analyzer app, read from the environment with safe defaults.

Documented in analyzer/README.md.
"""

from __future__ import annotations

import environ

env = environ.Env()

# Upload
MAX_UPLOAD_BYTES = env.int("ANALYZER_MAX_UPLOAD_BYTES", default=1024**3)
# What a compressed upload may expand to (gzip CSV: counted while decompressing; Parquet: the row
# groups' uncompressed size in its metadata), so a small upload cannot cost more than the largest plain one.
MAX_DECOMPRESSED_BYTES = env.int("ANALYZER_MAX_DECOMPRESSED_BYTES", default=1024**3)
# Distinct counts in the column profile are exact up to this many rows, approximate (shown with ≈) above.
PROFILE_EXACT_DISTINCT_ROWS = env.int("ANALYZER_PROFILE_EXACT_DISTINCT_ROWS", default=1_000_000)
PREVIEW_ROWS = env.int("ANALYZER_PREVIEW_ROWS", default=500)
KEEP_ORIGINAL = env.bool("ANALYZER_KEEP_ORIGINAL", default=False)
STORAGE_PREFIX = env.str("ANALYZER_STORAGE_PREFIX", default="analyzer")

# DuckDB limits (per query / per upload processing)
DUCKDB_MEMORY_LIMIT = env.str("ANALYZER_DUCKDB_MEMORY_LIMIT", default="1GB")
DUCKDB_THREADS = env.int("ANALYZER_DUCKDB_THREADS", default=2)
QUERY_TIMEOUT_SECONDS = env.float("ANALYZER_QUERY_TIMEOUT", default=20.0)
RESULT_ROWS_KEPT = env.int("ANALYZER_RESULT_ROWS_KEPT", default=10_000)
RESULT_ROWS_SHOWN = env.int("ANALYZER_RESULT_ROWS_SHOWN", default=500)
PLOT_ROWS_MAX = env.int("ANALYZER_PLOT_ROWS_MAX", default=5_000)
# Result budgets of one query: a cell longer than this is cut (with a visible marker); a result whose
# values (before cutting) pass RESULT_MAX_BYTES ends with "result too large"; the rows kept (after
# cutting) stop at RESULT_STORED_BYTES of JSON (the rest is dropped, the result marked truncated).
RESULT_CELL_CHARS = env.int("ANALYZER_RESULT_CELL_CHARS", default=2_000)
RESULT_MAX_BYTES = env.int("ANALYZER_RESULT_MAX_BYTES", default=64 * 1024**2)
RESULT_STORED_BYTES = env.int("ANALYZER_RESULT_STORED_BYTES", default=4 * 1024**2)
PLOT_SPEC_MAX_BYTES = env.int("ANALYZER_PLOT_SPEC_MAX_BYTES", default=100_000)

# Agent
LLM_PROVIDER = env.str("ANALYZER_LLM_PROVIDER", default="builtin")  # builtin | openai
OPENAI_BASE_URL = env.str("ANALYZER_OPENAI_BASE_URL", default="https://api.openai.com/v1")
OPENAI_API_KEY = env.str("ANALYZER_OPENAI_API_KEY", default="")
OPENAI_MODEL = env.str("ANALYZER_OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_TIMEOUT_SECONDS = env.float("ANALYZER_OPENAI_TIMEOUT", default=60.0)
MAX_STEPS = env.int("ANALYZER_MAX_STEPS", default=12)
ANSWER_TIMEOUT_SECONDS = env.float("ANALYZER_ANSWER_TIMEOUT", default=180.0)
PLOT_REPAIR_ATTEMPTS = env.int("ANALYZER_PLOT_REPAIR_ATTEMPTS", default=2)
SAMPLE_ROWS_FOR_MODEL = env.int("ANALYZER_SAMPLE_ROWS_FOR_MODEL", default=5)
MAX_QUESTION_CHARS = env.int("ANALYZER_MAX_QUESTION_CHARS", default=4000)
INGEST_MEMORY_LIMIT = env.str("ANALYZER_INGEST_MEMORY_LIMIT", default="1GB")
