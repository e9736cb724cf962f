"""The query guard: only one SELECT/WITH statement, reading only `data`, calling no refused function.

Checked by DuckDB's own parser, not by pattern matching: the statement's syntax tree
(`json_serialize_sql`) may name no table but `data` and its own CTEs, only a few
generating table functions, and no function that reads settings or the catalog
(which would show host paths).
"""

from __future__ import annotations

import functools
import json

import duckdb

from analyzer.duck.results import QueryFailed, QueryRefused
from analyzer.duck.sql_text import SUMMARY_TABLES, TABLE

# Table functions a query may use: they generate rows, they read nothing.
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "json_each", "json_tree"})
# Functions that read settings, variables, the environment or the catalog, or write the log.
REFUSED_FUNCTIONS = frozenset({
    "current_setting", "getenv", "getvariable", "write_log", "current_query", "json_execute_serialized_sql",
    "query", "query_table",
})
REFUSED_FUNCTION_PREFIXES = ("duckdb_", "pragma_", "pg_get_")
REFUSED_MESSAGE = (
    "Refused: queries may only read the table `data` (the uploaded file) and its summaries `data_rollup` and `data_sample`; reading or writing other files, "
    "attaching databases, installing extensions, reading settings or the catalog and changing settings are not "
    "allowed."
)


@functools.lru_cache(maxsize=1)
def _catalog_names() -> frozenset[str]:
    """Names of DuckDB's own views and tables (`duckdb_databases`, `pg_settings`, …): no CTE may take them."""
    con = duckdb.connect(":memory:")
    try:
        rows = con.execute("SELECT view_name FROM duckdb_views() UNION SELECT table_name FROM duckdb_tables()")
        return frozenset(str(name).lower() for (name,) in rows.fetchall())
    finally:
        con.close()


def _tree_names(node, found: dict) -> None:
    """Collect the tables, table functions, functions and CTE names of a serialized statement."""
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "BASE_TABLE":
            found["tables"].append((str(node.get("catalog_name") or ""), str(node.get("schema_name") or ""),
                                    str(node.get("table_name") or "")))
        elif kind == "TABLE_FUNCTION":
            function = node.get("function") or {}
            found["table_functions"].append(str(function.get("function_name") or ""))
        if node.get("class") == "FUNCTION" and "function_name" in node:
            found["functions"].append(str(node.get("function_name") or ""))
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map") or []:
                if isinstance(entry, dict):
                    found["ctes"].append(str(entry.get("key") or ""))
        for value in node.values():
            _tree_names(value, found)
    elif isinstance(node, list):
        for value in node:
            _tree_names(value, found)


def references_check(text: str, *, con) -> None:
    """QueryRefused unless the statement reads only `data` (and its own CTEs) and calls no refused function."""
    try:
        raw = con.execute("SELECT json_serialize_sql(?)", [text]).fetchone()[0]
        tree = json.loads(raw)
    except (duckdb.Error, TypeError, ValueError):
        raise QueryRefused("The query could not be checked; write a plain SELECT over `data`.") from None
    if tree.get("error"):
        raise QueryRefused("The query could not be checked; write a plain SELECT over `data`.")
    found: dict[str, list] = {"tables": [], "table_functions": [], "functions": [], "ctes": []}
    _tree_names(tree.get("statements"), found)
    ctes = {name.lower() for name in found["ctes"]}
    if ctes & _catalog_names():
        raise QueryRefused(REFUSED_MESSAGE)
    for catalog, schema, name in found["tables"]:
        if catalog or schema or name.lower() not in ctes | {TABLE, *SUMMARY_TABLES}:
            raise QueryRefused(REFUSED_MESSAGE)
    for name in found["table_functions"]:
        if name.lower() not in ALLOWED_TABLE_FUNCTIONS:
            raise QueryRefused(REFUSED_MESSAGE)
    for name in found["functions"]:
        lowered = name.lower()
        if lowered in REFUSED_FUNCTIONS or lowered.startswith(REFUSED_FUNCTION_PREFIXES):
            raise QueryRefused(REFUSED_MESSAGE)


def sql_check(sql: str, *, con=None) -> str:
    """The single SELECT/WITH statement in `sql`, or QueryRefused with a clear reason."""
    text = (sql or "").strip()
    if not text:
        raise QueryRefused("The query is empty.")
    if len(text) > 20_000:
        raise QueryRefused("The query is too long (over 20,000 characters).")
    parser = con or duckdb.connect(":memory:")
    try:
        try:
            statements = parser.extract_statements(text)
        except duckdb.Error as exc:
            raise QueryFailed(f"SQL syntax error: {exc}") from None
        if len(statements) != 1:
            raise QueryRefused(f"Only a single statement is allowed; got {len(statements)}.")
        statement = statements[0]
        if statement.type != duckdb.StatementType.SELECT:
            kind = str(statement.type).split(".")[-1]
            raise QueryRefused(f"Only SELECT (or WITH … SELECT) queries are allowed; this is a {kind} statement.")
        query = statement.query.strip().rstrip(";").strip()
        references_check(query, con=parser)
        return query
    finally:
        if con is None:
            parser.close()

