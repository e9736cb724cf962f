"""The analyst's plans over time: a measure per period (trend) and per month or weekday (season)."""

from __future__ import annotations

from analyzer.agent.builtin.charts import bar_spec, line_spec
from analyzer.agent.builtin.intent import Intent
from analyzer.agent.builtin.plans import Plan, best_row, fmt, value_of, where_of, where_sql, where_words
from analyzer.agent.builtin.schema import Column, Schema
from analyzer.agent.builtin.summaries import TIME_GRAINS, summary_source
from analyzer.duck import quote_ident as qi


def grain_auto(col: Column) -> str:
    lo, hi = str(col.profile.get("min") or ""), str(col.profile.get("max") or "")
    try:
        from datetime import date

        days = (date.fromisoformat(hi[:10]) - date.fromisoformat(lo[:10])).days
    except ValueError:
        return "day"
    return "month" if days > 3 * 365 else "week" if days > 120 else "day" if days >= 2 else "hour"


def plan_trend(intent: Intent, schema: Schema) -> Plan:
    t = intent.time
    value, label, what = value_of(intent)
    if t.kind == "temporal":
        grain = intent.grain if intent.grain and intent.grain != "decade" else grain_auto(t)
        if intent.grain == "decade":
            period, x_type, grain = f"(year({qi(t.name)}) // 10) * 10", "quantitative", "decade"
        else:
            period, x_type = f"date_trunc('{grain}', {qi(t.name)})", "temporal"
    else:
        grain = "decade" if intent.grain == "decade" else "year"
        period = f"({qi(t.name)} // 10) * 10" if grain == "decade" else qi(t.name)
        x_type = "quantitative"
    g = intent.groups[0].name if intent.groups else None
    keys = f"{period} AS period" + (f", {qi(g)}" if g else "")
    order = f"{3 if g else 2} {'ASC' if intent.order == 'asc' else 'DESC'} NULLS LAST, 1" if intent.order else \
        ("1, 2" if g else "1")
    limit = f" LIMIT {intent.n}" if intent.order and intent.n else ""
    source = f"FROM data{where_sql(intent, f'{qi(t.name)} IS NOT NULL')}"
    fast = summary_source(intent, schema, groups=intent.groups[:1], time_column=t.name,
                          where=where_of(intent, f"{qi(t.name)} IS NOT NULL")) \
        if t.kind != "temporal" or grain in TIME_GRAINS else None
    if fast:
        value, source = fast
    sql = (f"SELECT {keys}, {value} AS {qi(label)} {source} "
           f"GROUP BY {'1, 2' if g else '1'} ORDER BY {order}{limit}")

    def summarize(rows):
        if not rows:
            return f"There are no dated rows{where_words(intent)}."
        peak = rows[0] if intent.order else best_row(rows, label)
        return (f"{what.capitalize()} per {grain}{where_words(intent)} over {fmt(len(rows))} periods (from "
                f"{rows[0]['period']} to {rows[-1]['period']}); the highest is {fmt(peak[label])} in "
                f"{peak['period']}.")

    plan = Plan(summarize=summarize).query(sql, f"{what} per {grain}")
    spec = bar_spec("period", label, sort=None, x_type="ordinal" if x_type == "quantitative" else x_type) \
        if intent.chart == "bar" else line_spec("period", label, x_type=x_type, color=g)
    return plan.plot(f"{what.capitalize()} per {grain}", sql, spec)


def plan_season(intent: Intent, schema: Schema) -> Plan:
    t = qi(intent.time.name)
    value, label, what = value_of(intent)
    if intent.season == "month":
        key, name, unit = f"month({t})", f"monthname({t})", "month"
    else:
        key, name, unit = f"isodow({t})", f"dayname({t})", "weekday"
    order = f"3 {'ASC' if intent.order == 'asc' else 'DESC'} NULLS LAST" if intent.order else "1"
    source = f"FROM data{where_sql(intent, f'{t} IS NOT NULL')}"
    fast = summary_source(intent, schema, time_column=intent.time.name, where=where_of(intent, f"{t} IS NOT NULL"))
    if fast:
        value, source = fast
    sql = (f"SELECT {key} AS {unit}, any_value({name}) AS {unit}_name, {value} AS {qi(label)} "
           f"{source} GROUP BY 1 ORDER BY {order}")
    word = "lowest" if intent.order == "asc" else "highest"

    def summarize(rows):
        if not rows:
            return "There are no dated rows."
        best = rows[0] if intent.order else best_row(rows, label)
        return (f"{what.capitalize()} by {unit}{where_words(intent)}: the {word} is {best[unit + '_name']} with "
                f"{fmt(best[label])}.")

    return Plan(summarize=summarize).query(sql, f"{what} by {unit}").plot(
        f"{what.capitalize()} by {unit}", sql,
        bar_spec(f"{unit}_name", label, sort={"field": unit, "op": "min"}))
