"""The built-in analyst's overview of a file and its first charts (auto-analysis)."""

from __future__ import annotations

from analyzer.agent.builtin.charts import bar_spec, histogram_spec, histogram_sql, line_spec, point_spec, sample_sql
from analyzer.agent.builtin.plans import Plan, fmt
from analyzer.agent.builtin.plans_time import grain_auto
from analyzer.agent.builtin.schema import Column, Schema
from analyzer.agent.builtin.vocab import ADDITIVE
from analyzer.agent.context import DataContext
from analyzer.duck import quote_ident as qi


def overview_text(context: DataContext, schema: Schema) -> str:
    nums, texts, temps = schema.numeric(), schema.text(), schema.time()
    parts = [f"{context.filename} has {fmt(context.row_count)} rows and {len(context.columns)} columns "
             f"({len(nums)} numeric, {len(texts)} text, {len(temps)} date/time)."]
    with_nulls = [p for p in context.profile if p.get("nulls")]
    if with_nulls:
        worst = sorted(with_nulls, key=lambda p: -p["nulls"])[:3]
        parts.append("Missing values: " + ", ".join(f"{p['name']} {p['null_fraction']:.1%}" for p in worst) + ".")
    else:
        parts.append("No column has missing values.")
    if context.detection.get("rejected_rows"):
        parts.append(f"{fmt(context.detection['rejected_rows'])} malformed rows were skipped while reading.")
    for p in context.profile[:8]:
        approx = "about " if p.get("distinct_approximate") else ""
        if p.get("kind") == "numeric" and "mean" in p:
            parts.append(f"{p['name']} ranges from {fmt(p.get('min'))} to {fmt(p.get('max'))} "
                         f"(mean {fmt(p.get('mean'))}).")
        elif p.get("top_values"):
            parts.append(f"{p['name']}: {approx}{fmt(p['distinct'])} distinct values, most common "
                         f"{', '.join(str(v) for v in p['top_values'][:3])}.")
    return " ".join(parts)


def _measures(schema: Schema) -> list[Column]:
    """Numeric columns worth charting: not ids, not constant, the least empty first."""
    cols = [c for c in schema.numeric() if not schema.id_like(c) and c.distinct > 1]
    return sorted(cols, key=lambda c: c.profile.get("nulls", 0))


def _categories(schema: Schema) -> list[Column]:
    cols = [c for c in schema.text() if not schema.id_like(c) and 2 <= c.distinct <= 30]
    # Few values with rows in each read best; a column with one dominant value says little.
    return sorted(cols, key=lambda c: (c.distinct > 12, -c.distinct, c.profile.get("nulls", 0)))


def auto_analysis(context: DataContext, schema: Schema, examples: list[str]) -> Plan:
    plan = Plan().say(overview_text(context, schema))
    nums, cats, times = _measures(schema), _categories(schema), schema.time()
    if nums:
        n = nums[0].name
        plan.plot(f"Distribution of {n}", histogram_sql(n), histogram_spec(n))
    if cats:
        c = cats[0].name
        sql = f"SELECT {qi(c)}, count(*) AS count FROM data GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 30"
        plan.plot(f"Rows per {c}", sql, bar_spec(c, "count"))
    if times:
        t = times[0]
        m = next((c for c in nums if c is not t), None)
        if t.kind == "temporal":
            grain = grain_auto(t)
            period, x_type = f"date_trunc('{grain}', {qi(t.name)})", "temporal"
        else:
            grain, period, x_type = "year", qi(t.name), "quantitative"
        if m is not None:
            agg = "sum" if set(m.words) & ADDITIVE else "avg"
            label, value = f"{agg}_{m.name}", f"{agg}({qi(m.name)})"
            title = f"{'Total' if agg == 'sum' else 'Average'} {m.name} per {grain}"
        else:
            label, value, title = "count", "count(*)", f"Rows per {grain}"
        sql = (f"SELECT {period} AS period, {value} AS {qi(label)} FROM data WHERE {qi(t.name)} IS NOT NULL "
               f"GROUP BY 1 ORDER BY 1")
        plan.plot(title, sql, line_spec("period", label, x_type=x_type))
    elif len(nums) >= 2:
        a, b = nums[0].name, nums[1].name
        color = cats[0].name if cats else None
        plan.plot(f"{b} vs {a}", sample_sql([a, b] + ([color] if color else [])), point_spec(a, b, color=color))
    return plan.say("Ask a question below — for example: " + "; ".join(examples) + ".")


def examples_for(schema: Schema) -> list[str]:
    nums = [c.name for c in _measures(schema)] or [c.name for c in schema.numeric()]
    texts = [c.name for c in _categories(schema)] or [c.name for c in schema.text()]
    out = ["How many rows are there?"]
    if nums and texts:
        out.append(f"Average {nums[0]} by {texts[0]}")
    if nums:
        out.append(f"Distribution of {nums[0]}")
    if len(nums) >= 2:
        out.append(f"Correlation of {nums[0]} and {nums[1]}")
    if schema.time() and nums:
        out.append(f"{nums[0]} over time")
    return out
