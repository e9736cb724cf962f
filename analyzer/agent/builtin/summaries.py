"""Answering from the session's summary table (`data_rollup`, see analyzer.rollup) when it holds the answer.

A question qualifies when every column it groups or filters by is a key of one grouping set of the summary
(a category or small integer column as it is; a date or timestamp at a grain of a day or coarser, or filtered
by its year, month or date), and its aggregate is a count, sum, average, minimum or maximum of a measure.
Re-aggregating the rows of that set gives the same numbers as the scan of `data` (averages as sum ÷ count);
anything else returns None and the plan reads `data` as before.
"""

from __future__ import annotations

from analyzer.agent.builtin.intent import Intent
from analyzer.agent.builtin.schema import Schema
from analyzer.duck import quote_ident as qi
from analyzer.rollup import TABLE, double_literal

TIME_GRAINS = {"day", "week", "month", "quarter", "year", "decade"}


def _rollup(schema: Schema) -> dict | None:
    return getattr(schema, "rollup", None) or None


def _key(rollup: dict, column: str, kinds: tuple[str, ...]) -> str | None:
    for key in rollup["keys"]:
        if key["column"] == column and key["kind"] in kinds:
            return key["name"]
    return None


def _set(rollup: dict, needed: set[str], *, kind: str = "sets") -> int | None:
    sizes = {k["name"]: k["groups"] for k in rollup["keys"]}
    best = None
    for entry in rollup.get(kind, []):
        if needed <= set(entry["keys"]):
            size = 1
            for name in entry["keys"]:
                size *= sizes[name]
            if best is None or size < best[0]:
                best = (size, entry["id"])
    return None if best is None else best[1]


def filters_keys(rollup: dict, filters) -> set[str] | None:
    keys = set()
    for f in filters:
        if f.part in ("year", "month", "date"):
            key = _key(rollup, f.column.name, ("day", "value"))
        else:
            key = _key(rollup, f.column.name, ("value",))
        if key is None:
            return None
        keys.add(key)
    return keys


def value_from_summary(intent: Intent, rollup: dict) -> str | None:
    """The intent's aggregate over the summary's rows (value_of's expression, re-aggregated)."""
    if intent.agg == "count" or intent.measure is None:
        return 'sum("_n")'
    m = intent.measure.name
    if m not in rollup["measures"]:
        return None
    sums, counts = qi(f"{m}__sum"), qi(f"{m}__n")
    return {"sum": f"sum({sums})", "avg": f"sum({sums}) / sum({counts})", "min": f"min({qi(m + '__min')})",
            "max": f"max({qi(m + '__max')})"}.get(intent.agg)


def summary_source(intent: Intent, schema: Schema, *, groups=(), time_column: str | None = None,
                   condition=(), where: str = "") -> tuple[str, str] | None:
    """(aggregate expression, `FROM … WHERE …` text) reading the summary, or None when it cannot answer.

    `groups`: columns grouped by as they are; `time_column`: a date column grouped by a grain of a day or coarser;
    `condition`: filters of a share's part; `where`: the plan's own WHERE condition over the same columns."""
    rollup = _rollup(schema)
    if rollup is None:
        return None
    value = value_from_summary(intent, rollup)
    keys = filters_keys(rollup, [*intent.filters, *condition])
    if value is None or keys is None:
        return None
    for column in groups:
        key = _key(rollup, column.name, ("value",))
        if key is None:
            return None
        keys.add(key)
    if time_column is not None:
        key = _key(rollup, time_column, ("day", "value"))
        if key is None:
            return None
        keys.add(key)
    set_id = _set(rollup, keys)
    if set_id is None:
        return None
    return value, f"FROM {TABLE} WHERE \"_set\" = {set_id}" + (f" AND ({where})" if where else "")


def histogram_from_summary(column: str, schema: Schema, bins: int) -> str | None:
    """The histogram of a measure over all rows, from its precomputed bins (histogram_sql's numbers)."""
    rollup = _rollup(schema)
    if rollup is None:
        return None
    key = next((k for k in rollup["keys"] if k["kind"] == "bin" and k["column"] == column and k["bins"] == bins),
               None)
    set_id = _set(rollup, {key["name"]}) if key else None
    if set_id is None:
        return None
    lo, hi, b = double_literal(key["lo"]), double_literal(key["hi"]), qi(key["name"])
    return (f"SELECT {lo} + {b} * ({hi} - {lo}) / {bins} AS bin_start, {lo} + ({b} + 1) * ({hi} - {lo}) / {bins} "
            f"AS bin_end, sum(\"_n\") AS count FROM {TABLE} WHERE \"_set\" = {set_id} AND {b} IS NOT NULL "
            f"GROUP BY {b} ORDER BY {b}")


def correlation_from_summary(intent: Intent, schema: Schema) -> str | None:
    """corr(x, y) and the pair count from the summary's moments (about the means) of that pair."""
    rollup = _rollup(schema)
    if rollup is None:
        return None
    x, y = intent.measure.name, intent.second.name
    pair = next((p for p in rollup.get("pairs", []) if {p["x"], p["y"]} == {x, y}), None)
    keys = filters_keys(rollup, intent.filters)
    set_id = _set(rollup, keys, kind="pair_sets") if pair is not None and keys is not None else None
    if set_id is None:
        return None
    c = {name: qi(pair["prefix"] + name) for name in ("pairs", "sx", "sy", "sxx", "syy", "sxy")}
    cond = f" {intent.join} ".join(f.expr() for f in intent.filters)
    return (f"SELECT (sxy - sx * sy / n) / NULLIF(sqrt(greatest(sxx - sx * sx / n, 0) * greatest(syy - sy * sy / n, 0)), 0) "
            f"AS correlation, "
            f"n AS pairs FROM (SELECT sum({c['pairs']}) AS n, sum({c['sx']}) AS sx, sum({c['sy']}) AS sy, "
            f"sum({c['sxx']}) AS sxx, sum({c['syy']}) AS syy, sum({c['sxy']}) AS sxy FROM {TABLE} "
            f"WHERE \"_set\" = {set_id}" + (f" AND ({cond})" if cond else "") + ")")


def sample_from_summary(columns: list[str], schema: Schema, *, filtered: bool, rows: int = 2000) -> str | None:
    """A scatter's points from the stored uniform sample of the rows (no filters: they could leave too few)."""
    rollup = _rollup(schema)
    if rollup is None or filtered or not rollup.get("sample"):
        return None
    cols = ", ".join(qi(c) for c in columns)
    cond = " AND ".join(f"{qi(c)} IS NOT NULL" for c in columns[:2])
    return (f"SELECT {cols} FROM (SELECT {cols} FROM {rollup['sample']} WHERE {cond}) "
            f"USING SAMPLE reservoir({rows} ROWS) REPEATABLE (42)")
