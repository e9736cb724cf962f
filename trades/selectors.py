"""Reads: the SQL of an export (one builder for preview, estimate and export), lists, lookups."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from django.db import connection
from django.db.models import Max, QuerySet

from core.models import JobStatus
from core.permissions import get_for_viewer, visible_to
from trades import conf, expressions
from trades.models import Exchange, Export, Trade
from trades.params import AGGREGATE_FUNCTIONS, BUCKETS_NS, ExportParams

TABLE = Trade._meta.db_table

SORT_KEYS = {
    "time_desc": ("t.participant_timestamp", "DESC"),
    "time_asc": ("t.participant_timestamp", "ASC"),
    "size_asc": ("t.size", "ASC"),
    "size_desc": ("t.size", "DESC"),
    "price_asc": ("t.price", "ASC"),
    "price_desc": ("t.price", "DESC"),
}


@dataclass
class SelectSQL:
    sql: str
    params: list
    columns: list[str]  # output header (hidden keyset columns excluded)
    key_columns: int = 0  # trailing columns holding the keyset key (preview only)


class CursorError(ValueError):
    pass


def _vendor(vendor: str | None) -> str:
    return vendor or connection.vendor


def _where(params: ExportParams, ts_range: tuple[int | None, int | None] | None = None) -> tuple[list[str], list]:
    """The filter; `ts_range` (lo, hi) adds a half-open timestamp slice `lo <= t < hi` (None: open)."""
    clauses: list[str] = []
    values: list = []
    if params.exchanges:
        clauses.append(f"t.exchange_id IN ({', '.join(['%s'] * len(params.exchanges))})")
        values.extend(params.exchanges)
    if params.tickers:
        clauses.append(f"t.ticker IN ({', '.join(['%s'] * len(params.tickers))})")
        values.extend(params.tickers)
    for column, op, value in (
        ("t.price", ">=", params.pricelow),
        ("t.price", "<=", params.pricehigh),
        ("t.size", ">=", params.sizelow),
        ("t.size", "<=", params.sizehigh),
        ("t.participant_timestamp", ">=", params.ts_low_ns),
        ("t.participant_timestamp", "<", params.ts_high_ns),
    ):
        if value is not None:
            clauses.append(f"{column} {op} %s")
            values.append(value)
    if ts_range is not None:
        for op, value in zip((">=", "<"), ts_range):
            if value is not None:
                clauses.append(f"t.participant_timestamp {op} %s")
                values.append(int(value))
    return clauses, values


def _expressions(params: ExportParams, vendor: str, *, prefix: str = "t.") -> tuple[list[str], list]:
    parts, values = [], []
    for text in params.operations:
        sql, sql_params = expressions.to_sql(
            expressions.parse(text), vendor=vendor, price_col=f"{prefix}price", size_col=f"{prefix}size"
        )
        parts.append(sql)
        values.extend(sql_params)
    return parts, values


def export_select(
    *, params: ExportParams, vendor: str | None = None, after: list | None = None, limit: int | None = None,
    with_key: bool = False, ts_range: tuple[int | None, int | None] | None = None,
) -> SelectSQL:
    """The SELECT of an export. `with_key`/`after`/`limit` give keyset pages (never OFFSET);
    `ts_range` restricts it to one timestamp slice of a multi-stream export."""
    vendor = _vendor(vendor)
    if params.aggregated:
        return _aggregated_select(params=params, vendor=vendor, after=after, limit=limit, with_key=with_key,
                                  ts_range=ts_range)
    expr_sql, expr_params = _expressions(params, vendor)
    where, where_params = _where(params, ts_range)
    key, direction = SORT_KEYS[params.sortby or "time_desc"]
    select = ["t.ticker", "t.exchange_id", "t.participant_timestamp", "t.price", "t.size", "t.del_t", "t.del_p"]
    select += [f"{sql} AS e{i}" for i, sql in enumerate(expr_sql)]
    if with_key:
        select += [f"{key} AS k0", "t.id AS k1"]
    values = list(expr_params)
    if after is not None:
        comparison = "<" if direction == "DESC" else ">"
        where.append(f"({key}, t.id) {comparison} (%s, %s)")
        where_params = where_params + list(after)
    sql = f"SELECT {', '.join(select)} FROM {TABLE} t"
    if where:
        sql += " WHERE " + " AND ".join(where)
    values += where_params
    sql += f" ORDER BY {key} {direction}, t.id {direction}"
    if limit is not None:
        sql += " LIMIT %s"
        values.append(int(limit))
    return SelectSQL(sql, values, params.columns, 2 if with_key else 0)


def _aggregated_select(*, params, vendor, after, limit, with_key, ts_range=None) -> SelectSQL:
    bucket_ns = BUCKETS_NS[params.aggregateby]
    expr_sql, expr_params = _expressions(params, vendor)
    where, where_params = _where(params, ts_range)
    bucket = "t.participant_timestamp" if bucket_ns == 1 else "((t.participant_timestamp / %s) * %s)"
    bucket_params = [] if bucket_ns == 1 else [bucket_ns, bucket_ns]
    values = list(bucket_params) + list(expr_params)
    if after is not None:
        where.append(f"({bucket}, t.ticker) > (%s, %s)")
        where_params = where_params + bucket_params + list(after)
    inner = (
        f"SELECT t.id, t.ticker, t.participant_timestamp AS ts, t.price, t.size, {bucket} AS bucket"
        + "".join(f", {sql} AS e{i}" for i, sql in enumerate(expr_sql))
        + f" FROM {TABLE} t"
        + (" WHERE " + " AND ".join(where) if where else "")
    )
    values += where_params
    fn = AGGREGATE_FUNCTIONS[params.aggregate_fn]
    window = (
        "SELECT b.*, FIRST_VALUE(b.price) OVER w AS open_p, LAST_VALUE(b.price) OVER w AS close_p"
        f" FROM ({inner}) b WINDOW w AS (PARTITION BY b.bucket, b.ticker ORDER BY b.ts, b.id"
        " ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
    )
    select = [
        "s.bucket", "s.ticker", "COUNT(*)", "MIN(s.open_p)", "MAX(s.price)", "MIN(s.price)", "MIN(s.close_p)",
        "CAST(SUM(s.size) AS BIGINT)",
    ] + [f"{fn}(s.e{i})" for i in range(len(expr_sql))]
    if with_key:
        select += ["s.bucket AS k0", "s.ticker AS k1"]
    sql = f"SELECT {', '.join(select)} FROM ({window}) s GROUP BY s.bucket, s.ticker ORDER BY s.bucket, s.ticker"
    if limit is not None:
        sql += " LIMIT %s"
        values.append(int(limit))
    return SelectSQL(sql, values, params.columns, 2 if with_key else 0)


def export_count_sql(*, params: ExportParams, cap: int, vendor: str | None = None) -> tuple[str, list]:
    where, values = _where(params)
    where_sql = (" WHERE " + " AND ".join(where)) if where else ""
    if params.aggregated:
        bucket_ns = BUCKETS_NS[params.aggregateby]
        inner = (
            f"SELECT DISTINCT (t.participant_timestamp / %s), t.ticker FROM {TABLE} t{where_sql} LIMIT %s"
        )
        return f"SELECT COUNT(*) FROM ({inner}) c", [bucket_ns] + values + [cap + 1]
    return f"SELECT COUNT(*) FROM (SELECT 1 FROM {TABLE} t{where_sql} LIMIT %s) c", values + [cap + 1]


def export_estimate(*, params: ExportParams, cap: int | None = None) -> tuple[int, bool]:
    """(rows, capped): the output row count, counted up to `cap` (capped=True when more)."""
    cap = cap or conf.ESTIMATE_CAP
    sql, values = export_count_sql(params=params, cap=cap)
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        count = cursor.fetchone()[0]
    return min(count, cap), count > cap


def export_estimate_planner(*, params: ExportParams) -> int | None:
    """PostgreSQL's planner estimate of the output rows (free: nothing is scanned)."""
    if connection.vendor != "postgresql":
        return None
    select = export_select(params=params)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + select.sql, select.params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


# Slices of a multi-stream export (PostgreSQL): table rows read by the planning sample.
SLICE_SAMPLE_ROWS = 60_000
SLICE_MIN_SAMPLE = 20  # matching sample rows per slice below which equal-width slices are used


def export_slice_bounds(*, params: ExportParams, streams: int) -> list[int]:
    """Interior boundaries b1 < … < bk (k ≤ streams-1) cutting the filtered rows' timestamps into
    half-open slices [-inf, b1), [b1, b2), …, [bk, +inf) of roughly equal row counts (PostgreSQL).

    Quantiles of a small block sample (`TABLESAMPLE SYSTEM` of ~SLICE_SAMPLE_ROWS table rows, the
    filter applied); when the sample holds too few matching rows, equal widths between the
    filtered min and max timestamps (two index probes). Aggregated exports cut on bucket
    boundaries so that no bucket is split. [] means: a single stream. Any boundary is correct
    (slices are disjoint and cover everything); the sample only balances the work.
    """
    if streams < 2 or connection.vendor != "postgresql":
        return []
    where, values = _where(params)
    where_sql = (" WHERE " + " AND ".join(where)) if where else ""
    fractions = [i / streams for i in range(1, streams)]
    bounds: list[int] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [TABLE])
        row = cursor.fetchone()
        reltuples = float(row[0]) if row and row[0] is not None else -1.0
        if reltuples > 0:
            percent = min(100.0, max(0.0001, 100.0 * SLICE_SAMPLE_ROWS / reltuples))
            cursor.execute(
                "SELECT percentile_disc(%s::float8[]) WITHIN GROUP (ORDER BY t.participant_timestamp), COUNT(*)"
                f" FROM {TABLE} t TABLESAMPLE SYSTEM (%s) REPEATABLE (7){where_sql}",
                [fractions, percent] + values,
            )
            quantiles, sampled = cursor.fetchone()
            if sampled >= SLICE_MIN_SAMPLE * streams and quantiles:
                bounds = [int(q) for q in quantiles if q is not None]
        if not bounds:
            cursor.execute(
                f"SELECT MIN(t.participant_timestamp), MAX(t.participant_timestamp) FROM {TABLE} t{where_sql}",
                values,
            )
            low, high = cursor.fetchone()
            if low is None or high <= low:
                return []
            width = (int(high) - int(low)) / streams
            bounds = [int(low) + int(width * i) for i in range(1, streams)]
    if params.aggregated:
        bucket_ns = BUCKETS_NS[params.aggregateby]
        # Positive multiples of the bucket: `(ts / b) * b` (truncating) keeps every bucket on one side.
        bounds = [(b // bucket_ns) * bucket_ns for b in bounds]
        bounds = [b for b in bounds if b > 0]
    return sorted(set(bounds))


def encode_cursor(key: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(text: str, *, params: ExportParams) -> list:
    try:
        key = json.loads(base64.urlsafe_b64decode(text.encode()).decode())
    except (ValueError, UnicodeError):
        raise CursorError("The page cursor is not valid; run the preview again.") from None
    if not isinstance(key, list) or len(key) != 2:
        raise CursorError("The page cursor is not valid; run the preview again.")
    first, second = key
    second_ok = isinstance(second, str) if params.aggregated else isinstance(second, int)
    if not isinstance(first, (int, float)) or isinstance(first, bool) or not second_ok:
        raise CursorError("The page cursor does not match this query; run the preview again.")
    return key


def export_preview(*, params: ExportParams, cursor: str | None = None, rows: int | None = None) -> dict:
    """First (or next) page of the output plus the estimated total, by keyset pagination."""
    params = params.clean()
    rows = rows or conf.PREVIEW_ROWS
    after = decode_cursor(cursor, params=params) if cursor else None
    select = export_select(params=params, after=after, limit=rows + 1, with_key=True)
    with connection.cursor() as db:
        db.execute(select.sql, select.params)
        fetched = db.fetchall()
    page = fetched[:rows]
    next_cursor = encode_cursor(list(page[-1][-2:])) if len(fetched) > rows and page else None
    estimate, capped = export_estimate(params=params)
    return {
        "columns": select.columns,
        "rows": [list(row[: -select.key_columns]) for row in page],
        "estimated_rows": estimate,
        "estimate_capped": capped,
        "next_cursor": next_cursor,
    }


def exchange_list() -> QuerySet[Exchange]:
    return Exchange.objects.order_by("id")


def ticker_list() -> list[str]:
    """Distinct tickers, read by a loose index scan (skip scan) so it stays fast on big tables."""
    tickers: list[str] = []
    last = ""
    with connection.cursor() as cursor:
        while True:
            cursor.execute(f"SELECT MIN(ticker) FROM {TABLE} WHERE ticker > %s", [last])
            row = cursor.fetchone()
            if not row or row[0] is None:
                return tickers
            last = row[0]
            tickers.append(last)
            if len(tickers) >= 20_000:
                return tickers


def export_latest_finished(*, user) -> Export | None:
    """The user's most recently finished successful export (available or expired)."""
    return (
        Export.objects.filter(owner=user, status=JobStatus.SUCCEEDED)
        .order_by("-finished_at", "-pk")
        .first()
    )


def export_visible_to(*, user) -> QuerySet[Export]:
    """Who may see an export: its owner and staff (the pages, the API and the websocket)."""
    return visible_to(Export.objects.all(), user)


def export_get_for_viewer(*, user, pk) -> Export | None:
    return get_for_viewer(export_visible_to(user=user).select_related("owner"), pk)


def export_list(*, user) -> QuerySet[Export]:
    return export_visible_to(user=user).order_by("-created_at", "-pk")


def export_latest_finish_per_owner() -> QuerySet:
    return (
        Export.objects.filter(status=JobStatus.SUCCEEDED, expired_at__isnull=True)
        .exclude(file_name="")
        .values("owner_id")
        .annotate(latest=Max("finished_at"))
        .order_by("-latest")
    )
