"""The summary table of a large session, computed once when the file is loaded: `data_rollup`.

A question over millions of rows such as "average price by symbol where side is sell" scans the whole table
each time it is asked (about a second for 19 M rows on two cores). Most everyday questions group and filter by
a few columns with few values — categories, small integers, days — and ask for counts, sums, averages,
minima and maxima. So the loader computes those aggregates for every such column, alone and together with each
column of only a few values, plus each measure's 20 histogram bins (one scan per key, with the few-valued
columns riding along, then re-aggregated into every grouping set); the built-in analyst
answers from it when a question's groups and filters are all among a grouping set's columns
(`analyzer.agent.builtin.summaries`), and the SQL it shows reads `data_rollup`. The session's file never changes,
so the summary stays exact; anything it cannot answer goes to `data` as before.

Layout: `_set` (which grouping set a row belongs to: a bitmask over the key list, as DuckDB's GROUPING() numbers them), one column
per key (a category or integer column under its own name, a date or timestamp column truncated to its day under
its own name, `<measure>__bin` the histogram bin of a measure), `_n` (rows), and for every numeric column
`<m>__n` (non-null count), `<m>__sum`, `<m>__min`, `<m>__max`.
"""

from __future__ import annotations

from datetime import date
from itertools import combinations

from analyzer import conf
from analyzer.duck import quote_ident as qi
from analyzer.duck.sql_text import SAMPLE_TABLE, SUMMARY_TABLE
from analyzer.profiling import is_numeric, is_temporal

TABLE = SUMMARY_TABLE
MAX_KEY_DISTINCT = 1000  # a column with more values is not a key
MAX_DAYS = 20_000
PAIR_KEY_GROUPS = 65  # correlation moments are kept overall and by each key with at most this many values
MAX_SMALL_PRODUCT = 2_000  # the small keys' groups together, carried through every stage
PAIR_SET_OFFSET = 1 << 40  # the correlation rows' `_set` ids: the key's id plus this
KEEP_RATIO = 10  # the summary is kept only when at least this many times smaller than the table
BINS = 20
MAX_PAIR_MEASURES = 6  # correlation moments for every pair of the first few numeric columns
SAMPLE = SAMPLE_TABLE
SAMPLE_ROWS = 10_000
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")


def double_literal(value: float) -> str:
    return f"'{float(value)!r}'::DOUBLE"


def bin_expr(column: str, lo: float, hi: float, bins: int = BINS) -> str:
    """The histogram bucket of `column` exactly as analyzer.agent.builtin.charts.histogram_sql computes it."""
    x = f"{qi(column)}::DOUBLE"
    if hi == lo:
        return f"CASE WHEN {qi(column)} IS NULL THEN NULL ELSE 0::DOUBLE END"
    lo_s, hi_s = double_literal(lo), double_literal(hi)
    # LEAST skips NULLs in DuckDB: a missing value must stay out of every bin.
    return (f"CASE WHEN {qi(column)} IS NULL THEN NULL ELSE "
            f"LEAST(floor(({x} - {lo_s}) / (({hi_s} - {lo_s}) / {bins})), {bins - 1}) END")


def _days(entry: dict) -> int | None:
    try:
        lo = date.fromisoformat(str(entry.get("min"))[:10])
        hi = date.fromisoformat(str(entry.get("max"))[:10])
    except ValueError:
        return None
    return (hi - lo).days + 1


def rollup_keys(columns: list[dict], profile: list[dict], bounds: dict[str, tuple[float, float]]) -> list[dict]:
    by_name = {e["name"]: e for e in profile}
    keys: list[dict] = []
    for col in columns:
        entry = by_name.get(col["name"], {})
        name, type_name = col["name"], col["type"].upper()
        distinct = int(entry.get("distinct") or 0)
        if type_name in ("VARCHAR", "BOOLEAN") or type_name.startswith(INTEGER_TYPES):
            if 0 < distinct <= MAX_KEY_DISTINCT:
                keys.append({"name": name, "column": name, "kind": "value", "groups": distinct + 1,
                             "expr": qi(name)})
        elif is_temporal(type_name) and not type_name.startswith("TIME ") and type_name != "TIME":
            days = _days(entry)
            if days is not None and days <= MAX_DAYS:
                expr = qi(name) if type_name == "DATE" else f"date_trunc('day', {qi(name)})"
                keys.append({"name": name, "column": name, "kind": "day", "groups": days + 1, "expr": expr})
        if is_numeric(type_name) and name in bounds:
            lo, hi = bounds[name]
            keys.append({"name": f"{name}__bin", "column": name, "kind": "bin", "groups": BINS + 1,
                         "expr": bin_expr(name, lo, hi), "lo": lo, "hi": hi, "bins": BINS})
    return keys


def set_id(key_names: list[str], members: tuple[str, ...]) -> int:
    """DuckDB's GROUPING(k0, …, kn-1): bit n-1-i is set when key i is not in the grouping set."""
    n = len(key_names)
    return sum(1 << (n - 1 - i) for i, name in enumerate(key_names) if name not in members)


def rollup_build(con, *, columns: list[dict], profile: list[dict], row_count: int) -> dict | None:
    """Create `data_rollup` next to `data` (same connection, before the file is saved); answer its description
    for the built-in analyst, or None when the table is small or nothing would be summarized."""
    if row_count < conf.ROLLUP_MIN_ROWS:
        return None
    names = {c["name"] for c in columns}
    distinct = {e["name"]: int(e.get("distinct") or 0) for e in profile}
    # Row numbers and ids are no measures (nobody sums them); they would only cost time here.
    numeric = [c["name"] for c in columns if is_numeric(c["type"])
               and not (c["type"].upper().startswith(INTEGER_TYPES) and distinct.get(c["name"], 0) > row_count // 2)]
    if any(n.endswith(("__n", "__sum", "__min", "__max", "__bin")) or n in ("_set", "_n") for n in names):
        return None  # a column named like the summary's own: keep it simple, no summary
    bounds: dict[str, tuple[float, float]] = {}
    if numeric:
        parts = ", ".join(f"min({qi(n)}::DOUBLE), max({qi(n)}::DOUBLE)" for n in numeric)
        values = con.execute(f"SELECT {parts} FROM data").fetchone()
        for i, n in enumerate(numeric):
            lo, hi = values[2 * i], values[2 * i + 1]
            if lo is not None and hi is not None and lo == lo and hi == hi and abs(lo) != float("inf") \
                    and abs(hi) != float("inf"):
                bounds[n] = (float(lo), float(hi))
    keys = [k for k in rollup_keys(columns, profile, bounds) if k["kind"] != "bin" or k["column"] in numeric]
    if not keys:
        return None
    key_names = [k["name"] for k in keys]
    by_name = {k["name"]: k for k in keys}
    # Small keys (a few values each: side, venue…) ride along with every other key: one scan of the table per
    # other key, grouped by it and all the small keys, and every set is then re-aggregated from those stages —
    # a handful of passes over the data instead of one per set.
    small: list[str] = []
    product = 1
    for key in sorted(keys, key=lambda k: k["groups"]):
        if key["kind"] == "value" and key["groups"] <= PAIR_KEY_GROUPS and product * key["groups"] <= MAX_SMALL_PRODUCT:
            small.append(key["name"])
            product *= key["groups"]
    others = [k for k in key_names if k not in small]
    stages = [[other, *small] for other in others] or [small]
    measures = ["count(*) AS _n"]
    rolled = ['sum("_n") AS _n']
    for n in numeric:
        measures += [f"count({qi(n)}) AS {qi(n + '__n')}", f"sum({qi(n)}) AS {qi(n + '__sum')}",
                     f"min({qi(n)}) AS {qi(n + '__min')}", f"max({qi(n)}) AS {qi(n + '__max')}"]
        rolled += [f"sum({qi(n + '__n')}) AS {qi(n + '__n')}", f"sum({qi(n + '__sum')}) AS {qi(n + '__sum')}",
                   f"min({qi(n + '__min')}) AS {qi(n + '__min')}", f"max({qi(n + '__max')}) AS {qi(n + '__max')}"]
    # Correlation: the moments of each pair over the rows where both are set, about the columns' means (so the
    # sums stay small and corr = Sxy / sqrt(Sxx Syy) keeps its precision after re-aggregation). Computed in the
    # first stage only, and kept overall and by each small key.
    means = {e["name"]: e.get("mean") for e in profile}
    paired = [n for n in numeric if isinstance(means.get(n), (int, float)) and means[n] == means[n]][:MAX_PAIR_MEASURES]
    moments, rolled_moments, pairs = [], [], []
    for a, b in combinations(paired, 2):
        both = f"{qi(a)} IS NOT NULL AND {qi(b)} IS NOT NULL"
        dx, dy = f"({qi(a)}::DOUBLE - {double_literal(means[a])})", f"({qi(b)}::DOUBLE - {double_literal(means[b])})"
        prefix = f"{a}__{b}__"
        moments += [f"count(*) FILTER (WHERE {both}) AS {qi(prefix + 'pairs')}"] + [
            f"sum({expr}) FILTER (WHERE {both}) AS {qi(prefix + name)}"
            for name, expr in (("sx", dx), ("sy", dy), ("sxx", f"{dx} * {dx}"), ("syy", f"{dy} * {dy}"),
                               ("sxy", f"{dx} * {dy}"))]
        rolled_moments += [f"sum({qi(prefix + name)}) AS {qi(prefix + name)}"
                           for name in ("pairs", "sx", "sy", "sxx", "syy", "sxy")]
        pairs.append({"x": a, "y": b, "prefix": prefix})
    sets: list[tuple[str, ...]] = []
    branches = []
    try:
        for index, stage in enumerate(stages):
            own = ", ".join(f"{by_name[m]['expr']} AS {qi(m)}" for m in stage)
            group = ", ".join(str(i + 1) for i in range(len(stage)))
            extra = moments if index == 0 else []
            con.execute(f"CREATE OR REPLACE TEMP TABLE _rollup_stage_{index} AS SELECT {own}, "
                        f"{', '.join(measures + extra)} FROM data GROUP BY {group}")
            derived = [tuple(stage[:1])] + [(stage[0], s) for s in small] if others else []
            if index == 0:
                derived += [(s,) for s in small] + list(combinations(small, 2))
            for members in derived:
                if members in sets:
                    continue
                sets.append(members)
                cols = ", ".join(qi(m) for m in members)
                branches.append(f"SELECT {set_id(key_names, members)} AS _set, {cols}, {', '.join(rolled)} "
                                f"FROM _rollup_stage_{index} GROUP BY {cols}")
            if index == 0 and moments:
                for members in [(), *((s,) for s in small)]:
                    cols = ", ".join(qi(m) for m in members)
                    branches.append(f"SELECT {set_id(key_names, members) + PAIR_SET_OFFSET} AS _set, "
                                    f"{cols + ', ' if cols else ''}{', '.join(rolled_moments)} "
                                    f"FROM _rollup_stage_0" + (f" GROUP BY {cols}" if cols else ""))
        query = " UNION ALL BY NAME ".join(branches)
        con.execute(f"CREATE TABLE {TABLE} AS {query}")
    finally:
        for index in range(len(stages)):
            con.execute(f"DROP TABLE IF EXISTS _rollup_stage_{index}")
    rows = con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    if rows * KEEP_RATIO > row_count:  # not much smaller than the table itself: not worth keeping
        con.execute(f"DROP TABLE {TABLE}")
        return None
    # A uniform sample of the rows, for scatter plots (which show a sample of 2,000 points anyway).
    con.execute(f"CREATE TABLE {SAMPLE} AS SELECT * FROM data USING SAMPLE reservoir({SAMPLE_ROWS} ROWS) "
                "REPEATABLE (42)")
    return {
        "table": TABLE,
        "rows": int(rows),
        "keys": [{k: v for k, v in key.items() if k != "expr"} for key in keys],
        "measures": numeric,
        "pairs": pairs,
        "sets": [{"keys": list(s), "id": set_id(key_names, s)} for s in sets],
        "pair_sets": [{"keys": list(m), "id": set_id(key_names, m) + PAIR_SET_OFFSET}
                      for m in [(), *((s,) for s in small)]] if moments else [],
        "sample": SAMPLE,
        "sample_rows": SAMPLE_ROWS,
    }


def rollup_drop(con) -> None:
    """Remove a summary left half-made (the session then reads `data` only)."""
    for name in (TABLE, SAMPLE):
        con.execute(f"DROP TABLE IF EXISTS {name}")
