"""What an untrusted query comes back with: its result, or why it was refused or failed."""

from __future__ import annotations

from dataclasses import dataclass, field

TRUNCATED_MARKER = "… [truncated"


class QueryRefused(Exception):
    """The statement is not allowed (not a single SELECT, touches other files, …)."""


class QueryFailed(Exception):
    """DuckDB could not run the query (syntax, unknown column, time limit, …)."""


@dataclass
class QueryResult:
    columns: list[dict]
    rows: list[dict]
    truncated: bool
    seconds: float
    sql: str = ""
    extra: dict = field(default_factory=dict)
    # Cells cut to RESULT_CELL_CHARS (each ends with TRUNCATED_MARKER).
    cells_truncated: int = 0

