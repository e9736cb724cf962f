"""From an intent to the analyst's tool calls: the SQL it runs, the chart it draws, the sentence it writes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from analyzer.agent.builtin.charts import bar_spec, histogram_spec, histogram_sql, line_spec, point_spec, sample_sql
from analyzer.agent.builtin.intent import Intent
from analyzer.agent.builtin.schema import Schema
from analyzer.agent.builtin.summaries import (correlation_from_summary, histogram_from_summary,
                                              sample_from_summary, summary_source)
from analyzer.agent.builtin.vocab import AGG_LABEL, AGG_SQL
from analyzer.duck import quote_ident as qi
from analyzer.duck import sql_literal


def fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "n/a"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.2f}"
        return f"{value:.4g}"
    return str(value)


@dataclass
class Plan:
    calls: list[tuple[str, dict]] = field(default_factory=list)
    # Turns the first query's rows into the closing sentence.
    summarize: Callable[[list[dict]], str] | None = None
    # False when the analyst asks back or cannot answer: with an LLM configured, the question goes to it.
    sure: bool = True

    def query(self, sql: str, explanation: str = "") -> Plan:
        self.calls.append(("generate_query", {"sql": sql, "explanation": explanation}))
        return self

    def plot(self, title: str, sql: str, spec: dict) -> Plan:
        self.calls.append(("create_plot", {"title": title, "sql": sql, "vega_lite_spec": spec}))
        return self

    def say(self, text: str) -> Plan:
        self.calls.append(("write_to_chat", {"text": text}))
        return self


def where_of(intent: Intent, *extra: str) -> str:
    parts = [f.expr() for f in intent.filters]
    cond = f" {intent.join} ".join(parts)
    if cond and len(parts) > 1 and extra:
        cond = f"({cond})"
    conds = [c for c in (cond, *extra) if c]
    return " AND ".join(conds)


def where_sql(intent: Intent, *extra: str) -> str:
    cond = where_of(intent, *extra)
    return f" WHERE {cond}" if cond else ""


def where_words(intent: Intent) -> str:
    if not intent.filters:
        return ""
    return " where " + f" {intent.join.lower()} ".join(f.words() for f in intent.filters)


def value_of(intent: Intent) -> tuple[str, str, str]:
    """(SQL expression, result column, words) of the intent's aggregate."""
    if intent.agg == "count" or intent.measure is None:
        return "count(*)", "count", "number of rows"
    m = intent.measure
    return f"{AGG_SQL[intent.agg]}({qi(m.name)})", f"{intent.agg}_{m.name}", f"{AGG_LABEL[intent.agg]} of {m.name}"


def plan_build(intent: Intent, schema: Schema) -> Plan:
    # The plans over time build on this module's parts, so they are imported here.
    from analyzer.agent.builtin.plans_time import plan_season, plan_trend

    over_time = {"trend": plan_trend, "season": plan_season}
    return (over_time.get(intent.kind) or globals()[f"_plan_{intent.kind}"])(intent, schema)


def best_row(rows: list[dict], label: str, desc: bool = True) -> dict:
    present = [r for r in rows if r.get(label) is not None]
    if not present:
        return rows[0]
    return max(present, key=lambda r: r[label]) if desc else min(present, key=lambda r: r[label])


def _plan_aggregate(intent: Intent, schema: Schema) -> Plan:
    value, label, what = value_of(intent)
    where = where_sql(intent)
    source = f"FROM data{where}"
    fast = summary_source(intent, schema, groups=intent.groups[:2], where=where_of(intent))
    if fast:
        value, source = fast
    if not intent.groups:
        sql = f"SELECT {value} AS {qi(label)} {source}"
        return Plan(summarize=lambda rows: f"The {what}{where_words(intent)} is {fmt(rows[0][label])}.").query(
            sql, what)
    groups = intent.groups[:2]
    keys = ", ".join(qi(g.name) for g in groups)
    by = ", ".join(str(i + 1) for i in range(len(groups)))
    desc = intent.order != "asc"
    if intent.order or not groups[0].is_time:
        order = f"{len(groups) + 1} {'DESC' if desc else 'ASC'} NULLS LAST, 1"
    else:
        order = "1"
    limit = f" LIMIT {intent.n}" if intent.n else ""
    sql = f"SELECT {keys}, {value} AS {qi(label)} {source} GROUP BY {by} ORDER BY {order}{limit}"
    g = groups[0].name
    names = " and ".join(x.name for x in groups)

    def summarize(rows):
        if not rows:
            return f"No rows match{where_words(intent)}."
        best = rows[0] if intent.order else best_row(rows, label)
        word = "lowest" if not desc else "highest"
        return (f"The {what} by {names}{where_words(intent)} over {fmt(len(rows))} groups: the {word} is "
                f"{best[g]} with {fmt(best[label])}.")

    plan = Plan(summarize=summarize).query(sql, f"{what} by {names}")
    color = groups[1].name if len(groups) > 1 else None
    if intent.chart == "line" or (groups[0].is_time and intent.chart != "bar"):
        return plan.plot(f"{what.capitalize()} by {g}", sql,
                         line_spec(g, label, x_type="temporal" if groups[0].kind == "temporal" else "quantitative",
                                   color=color))
    many = groups[0].distinct > 50 and not intent.n
    return plan.plot(f"{what.capitalize()} by {names}" + (" (top 50)" if many else ""),
                     f"{sql} LIMIT 50" if many else sql,
                     bar_spec(g, label, sort=("-y" if desc else "y"), color=color))


def _plan_rows(intent: Intent, schema: Schema) -> Plan:
    if intent.measure is None:
        where = where_sql(intent)
        count_sql = f"SELECT count(*) AS count FROM data{where}"
        return Plan(summarize=lambda rows: f"{fmt(rows[0]['count'])} rows match{where_words(intent)} (the first "
                                           f"ones are listed below).").query(count_sql, "matching rows").query(
            f"SELECT * FROM data{where} LIMIT 100", "the matching rows")
    m = intent.measure.name
    desc = intent.order != "asc"
    n = max(1, min(intent.n or 1, 1000))
    sql = (f"SELECT * FROM data{where_sql(intent, f'{qi(m)} IS NOT NULL')} "
           f"ORDER BY {qi(m)} {'DESC' if desc else 'ASC'} LIMIT {n}")
    word = "highest" if desc else "lowest"

    def summarize(rows):
        if not rows:
            return f"No rows have a {m}{where_words(intent)}."
        first = rows[0]
        described = ", ".join(f"{k} {fmt(v)}" for k, v in list(first.items())[:6] if k != m)
        if n == 1:
            return f"The {word} {m}{where_words(intent)} is {fmt(first[m])} ({described})."
        return (f"The {len(rows)} rows with the {word} {m}{where_words(intent)}: from {fmt(first[m])} to "
                f"{fmt(rows[-1][m])}.")

    plan = Plan(summarize=summarize).query(sql, f"rows with the {word} {m}")
    label_col = next((c for c in schema.text() if c.distinct >= 0.5 * max(schema.row_count, 1)), None)
    if n > 1 and intent.chart and label_col:
        plan.plot(f"{'Top' if desc else 'Bottom'} {n} by {m}", sql, bar_spec(label_col.name, m,
                                                                                sort="-y" if desc else "y"))
    return plan


def _plan_distinct(intent: Intent, schema: Schema) -> Plan:
    t = intent.target.name
    if intent.agg == "count":
        label = f"distinct_{t}"
        sql = f"SELECT count(DISTINCT {qi(t)}) AS {qi(label)} FROM data{where_sql(intent)}"
        return Plan(summarize=lambda rows: f"There are {fmt(rows[0][label])} different {t} values"
                                           f"{where_words(intent)}.").query(sql, f"number of different {t}")
    sql = (f"SELECT {qi(t)}, count(*) AS count FROM data{where_sql(intent, f'{qi(t)} IS NOT NULL')} "
           f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 500")

    def summarize(rows):
        shown = ", ".join(str(r[t]) for r in rows[:12])
        more = f" and {len(rows) - 12} more" if len(rows) > 12 else ""
        return f"{t} has {fmt(len(rows))} different values{where_words(intent)}: {shown}{more}."

    return Plan(summarize=summarize).query(sql, f"the different {t} values")


def _plan_missing(intent: Intent, schema: Schema) -> Plan:
    if intent.target is not None:
        t = intent.target.name
        sql = f"SELECT count(*) - count({qi(t)}) AS missing, count(*) AS rows FROM data{where_sql(intent)}"
        return Plan(summarize=lambda rows: f"{t} is missing in {fmt(rows[0]['missing'])} of {fmt(rows[0]['rows'])} "
                                           f"rows.").query(sql, f"missing values of {t}")
    cols = schema.columns
    names = ", ".join(sql_literal(c.name) for c in cols)
    counts = ", ".join(f"count(*) - count({qi(c.name)})" for c in cols)
    sql = (f"SELECT unnest([{names}]) AS \"column\", unnest([{counts}]) AS missing, count(*) AS rows "
           f"FROM data{where_sql(intent)}")

    def summarize(rows):
        gaps = [r for r in rows if r["missing"]]
        if not gaps:
            return f"No column has missing values ({fmt(rows[0]['rows'] if rows else 0)} rows)."
        return "Missing values per column: " + ", ".join(f"{r['column']} {fmt(r['missing'])}" for r in gaps) + \
            f" (of {fmt(rows[0]['rows'])} rows); the other columns are complete."

    return Plan(summarize=summarize).query(sql, "missing values per column").plot(
        "Missing values per column", sql, bar_spec("column", "missing", sort=None))


def _correlation_query(intent: Intent, schema: Schema) -> tuple[str, Callable]:
    x, y = intent.measure.name, intent.second.name
    sql = correlation_from_summary(intent, schema) or (
        f"SELECT corr({qi(x)}, {qi(y)}) AS correlation, count(*) AS pairs FROM data"
        f"{where_sql(intent, f'{qi(x)} IS NOT NULL', f'{qi(y)} IS NOT NULL')}")

    def summarize(rows):
        r = rows[0]["correlation"]
        if r is None:
            return f"The correlation between {x} and {y} is undefined (constant values or too few rows)."
        strength = ("very strong" if abs(r) >= 0.8 else "strong" if abs(r) >= 0.6 else "moderate"
                    if abs(r) >= 0.4 else "weak" if abs(r) >= 0.2 else "little or no")
        rel = f"{strength} {'positive' if r > 0 else 'negative'}" if strength != "little or no" else \
            "little or no linear"
        return (f"The Pearson correlation between {x} and {y} is {r:.3f} over {fmt(rows[0]['pairs'])} rows: "
                f"{rel} relationship.")

    return sql, summarize


def _plan_correlation(intent: Intent, schema: Schema) -> Plan:
    sql, summarize = _correlation_query(intent, schema)
    return _scatter_plot(Plan(summarize=summarize).query(sql, f"correlation of {intent.measure.name} and "
                                                              f"{intent.second.name}"), intent, schema)


def _plan_scatter(intent: Intent, schema: Schema) -> Plan:
    return _plan_correlation(intent, schema)


def _scatter_plot(plan: Plan, intent: Intent, schema: Schema) -> Plan:
    x, y = intent.measure.name, intent.second.name
    color = intent.groups[0].name if intent.groups else None
    cols = [x, y] + ([color] if color else [])
    sql = sample_from_summary(cols, schema, filtered=bool(intent.filters)) or sample_sql(cols, where_of(intent))
    return plan.plot(f"{y} vs {x}", sql, point_spec(x, y, color=color))


def _plan_histogram(intent: Intent, schema: Schema) -> Plan:
    name = intent.measure.name
    sql = (None if intent.filters else histogram_from_summary(name, schema, bins=20)) or \
        histogram_sql(name, where=where_of(intent))

    def summarize(rows):
        peak = max(rows, key=lambda r: r["count"])
        return (f"Distribution of {name}{where_words(intent)} in {len(rows)} equal-width bins; the most common range "
                f"is {fmt(peak['bin_start'])} to {fmt(peak['bin_end'])} ({fmt(peak['count'])} rows).")

    return Plan(summarize=summarize).query(sql, f"histogram of {name}").plot(f"Distribution of {name}", sql,
                                                                            histogram_spec(name))


def _plan_share(intent: Intent, schema: Schema) -> Plan:
    m = intent.measure
    total = f"sum({qi(m.name)})" if m else "count(*)"
    source = f"FROM data{where_sql(intent)}"
    as_sum = Intent("aggregate", agg="sum" if m else "count", measure=m, filters=intent.filters, join=intent.join)
    fast = summary_source(as_sum, schema, groups=intent.groups[:1], condition=intent.condition,
                          where=where_of(intent))
    if fast:
        total, source = fast
    if intent.groups:
        g = intent.groups[0].name
        label = f"total_{m.name}" if m else "count"
        sql = (f"SELECT {qi(g)}, {total} AS {qi(label)}, 100.0 * {total} / sum({total}) OVER () AS percent "
               f"{source} GROUP BY 1 ORDER BY 2 DESC NULLS LAST")
        return Plan(summarize=lambda rows: f"Share of {'total ' + m.name if m else 'rows'} by {g}"
                                           f"{where_words(intent)}: " + ", ".join(
            f"{r[g]} {r['percent']:.1f} %" for r in rows[:8] if r["percent"] is not None) + ".").query(
            sql, f"share by {g}").plot(f"Share by {g}", sql, bar_spec(g, "percent"))
    cond = " AND ".join(f.expr() for f in intent.condition)
    part = f"{total} FILTER (WHERE {cond})"
    sql = f"SELECT 100.0 * {part} / {total} AS percent, {part} AS part, {total} AS total {source}"
    words = " and ".join(f.words() for f in intent.condition)
    what = f"of total {m.name}" if m else "of rows"
    return Plan(summarize=lambda rows: f"{rows[0]['percent']:.1f} % {what}{where_words(intent)} have {words} "
                                       f"({fmt(rows[0]['part'])} of {fmt(rows[0]['total'])})."
                if rows[0]["percent"] is not None else "No rows match.").query(sql, f"share where {words}")


def _plan_describe(intent: Intent, schema: Schema) -> Plan:
    col = intent.target
    name, q = col.name, qi(col.name)
    where = where_sql(intent)
    if col.kind == "numeric":
        sql = (f"SELECT count(*) AS rows, count({q}) AS non_null, count(DISTINCT {q}) AS distinct_values, "
               f"min({q}) AS min, max({q}) AS max, avg({q}) AS mean, median({q}) AS median, "
               f"stddev_samp({q}) AS std FROM data{where}")

        def summarize(rows):
            r = rows[0]
            return (f"{name} ({col.type}): {fmt(r['non_null'])} values ({fmt(r['rows'] - r['non_null'])} "
                    f"missing), {fmt(r['distinct_values'])} distinct, from {fmt(r['min'])} to {fmt(r['max'])}, "
                    f"mean {fmt(r['mean'])}, median {fmt(r['median'])}, standard deviation {fmt(r['std'])}.")

        return Plan(summarize=summarize).query(sql, f"statistics of {name}").plot(
            f"Distribution of {name}", histogram_sql(name, where=where_of(intent)), histogram_spec(name))
    sql = (f"SELECT count(*) AS rows, count({q}) AS non_null, count(DISTINCT {q}) AS distinct_values, "
           f"min({q}) AS min, max({q}) AS max, mode({q}) AS most_frequent FROM data{where}")

    def summarize_text(rows):
        r = rows[0]
        return (f"{name} ({col.type}): {fmt(r['non_null'])} values ({fmt(r['rows'] - r['non_null'])} "
                f"missing), {fmt(r['distinct_values'])} distinct, from {r['min']} to {r['max']}; most frequent: "
                f"{r['most_frequent']}.")

    plan = Plan(summarize=summarize_text).query(sql, f"statistics of {name}")
    if col.kind == "temporal":
        return plan
    top_sql = f"SELECT {q}, count(*) AS count FROM data{where} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20"
    return plan.plot(f"Most frequent {name}", top_sql, bar_spec(name, "count"))


def _plan_columns(intent: Intent, schema: Schema) -> Plan:
    names = ", ".join(f"{c.name} ({c.type})" for c in schema.columns)
    return Plan().say(f"The file has {len(schema.columns)} columns: {names}.")
