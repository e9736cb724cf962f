"""Settings of the analyzer app (core.appconf: read from the environment by config/settings.py as
`ANALYZER_<NAME>`, read here when used). Documented in analyzer/README.md.
"""

from core.appconf import AppSettings, Setting

SETTINGS = AppSettings(
    "ANALYZER",
    # Upload
    MAX_UPLOAD_BYTES=Setting("int", 1024**3),
    # What a compressed upload may expand to (gzip CSV: counted while decompressing; Parquet: the row
    # groups' uncompressed size in its metadata), so a small upload cannot cost more than the largest plain one.
    MAX_DECOMPRESSED_BYTES=Setting("int", 1024**3),
    # Distinct counts in the column profile are exact up to this many rows, approximate (shown with ≈) above.
    PROFILE_EXACT_DISTINCT_ROWS=Setting("int", 1_000_000),
    PREVIEW_ROWS=Setting("int", 500),
    # Files with at least this many rows get a summary table at load time (analyzer.rollup) that the built-in
    # analyst answers grouped counts, sums, averages, minima and maxima from.
    ROLLUP_MIN_ROWS=Setting("int", 1_000_000),
    KEEP_ORIGINAL=Setting("bool", False),
    STORAGE_PREFIX=Setting("str", "analyzer"),
    # DuckDB limits (per query / per upload processing)
    DUCKDB_MEMORY_LIMIT=Setting("str", "1GB"),
    DUCKDB_THREADS=Setting("int", 2),
    QUERY_TIMEOUT_SECONDS=Setting("float", 20.0, env="ANALYZER_QUERY_TIMEOUT"),
    RESULT_ROWS_KEPT=Setting("int", 10_000),
    RESULT_ROWS_SHOWN=Setting("int", 500),
    PLOT_ROWS_MAX=Setting("int", 5_000),
    # Result budgets of one query: a cell longer than this is cut (with a visible marker); a result whose
    # values (before cutting) pass RESULT_MAX_BYTES ends with "result too large"; the rows kept (after
    # cutting) stop at RESULT_STORED_BYTES of JSON (the rest is dropped, the result marked truncated).
    RESULT_CELL_CHARS=Setting("int", 2_000),
    RESULT_MAX_BYTES=Setting("int", 64 * 1024**2),
    RESULT_STORED_BYTES=Setting("int", 4 * 1024**2),
    PLOT_SPEC_MAX_BYTES=Setting("int", 100_000),
    # Agent
    # The analyst a question goes to unless the user picks another: builtin, or the name of a configured provider.
    LLM_PROVIDER=Setting("str", "builtin"),
    # LLM providers (JSON list of {name, label, base_url, model, api_key_env, send_rows, builtin_first, timeout,
    # max_retries, stream_usage, description}); see agent/providers.py and the README.
    LLM_PROVIDERS=Setting("json", []),
    # One provider named `openai` from these, present when LLM_PROVIDER=openai or the key is set.
    OPENAI_BASE_URL=Setting("str", "https://api.openai.com/v1"),
    OPENAI_API_KEY=Setting("str", ""),
    OPENAI_MODEL=Setting("str", "gpt-4o-mini"),
    OPENAI_TIMEOUT_SECONDS=Setting("float", 60.0, env="ANALYZER_OPENAI_TIMEOUT"),
    OPENAI_MAX_RETRIES=Setting("int", 2),
    # What the `openai` provider may see: False sends the schema and the profile only, never a row.
    LLM_SEND_ROWS=Setting("bool", True),
    LLM_BUILTIN_FIRST=Setting("bool", True),
    # Tokens (prompt + completion) one user may spend on LLM answers per UTC day; 0 = no limit.
    DAILY_TOKEN_BUDGET=Setting("int", 0),
    MAX_STEPS=Setting("int", 12),
    ANSWER_TIMEOUT_SECONDS=Setting("float", 180.0, env="ANALYZER_ANSWER_TIMEOUT"),
    PLOT_REPAIR_ATTEMPTS=Setting("int", 2),
    SAMPLE_ROWS_FOR_MODEL=Setting("int", 5),
    MAX_QUESTION_CHARS=Setting("int", 4000),
    INGEST_MEMORY_LIMIT=Setting("str", "1GB"),
)
__getattr__ = SETTINGS.get
