"""SQL text: the one table's name, identifiers and string literals quoted for DuckDB."""

from __future__ import annotations

TABLE = "data"


def quote_ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"

