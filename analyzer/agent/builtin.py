"""The built-in analyst: offline and deterministic, it answers common questions with the same tools an LLM uses.

It recognises a handful of question shapes (row counts, describe a column,
top/bottom N, aggregate of X by Y, distribution, X over time, correlation,
raw SQL) by matching words and the file's column names, plans tool calls
(`generate_query`, `create_plot`, `write_to_chat`, `finish`) and, once the
query results come back, writes a one-paragraph summary of them. Anything
else gets a plain "an LLM provider is needed" answer with examples.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from analyzer.agent.base import Provider, ToolCall, Turn
from analyzer.agent.context import DataContext
from analyzer.agent.tools import AUTO_ANALYSIS_PROMPT
from analyzer.duck import quote_ident as qi
from analyzer.ingest import is_numeric, is_temporal

AGG_WORDS = {
    "sum": "sum", "total": "sum", "average": "avg", "avg": "avg", "mean": "avg", "median": "median",
    "minimum": "min", "min": "min", "maximum": "max", "max": "max", "count": "count", "number": "count",
}
AGG_LABEL = {"sum": "total", "avg": "average", "median": "median", "min": "minimum", "max": "maximum",
             "count": "count"}
GRAINS = {"hour": "hour", "hourly": "hour", "day": "day", "daily": "day", "date": "day", "week": "week",
          "weekly": "week", "month": "month", "monthly": "month", "quarter": "quarter", "year": "year",
          "yearly": "year", "annual": "year"}
TOP_WORDS = {"top": "desc", "highest": "desc", "largest": "desc", "biggest": "desc", "most": "desc",
             "bottom": "asc", "lowest": "asc", "smallest": "asc", "least": "asc"}


def fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "n/a"
        if abs(value) >= 1000:
            return f"{value:,.2f}"
        return f"{value:.4g}"
    return str(value)


@dataclass
class Plan:
    calls: list[tuple[str, dict]] = field(default_factory=list)
    # Turns the first query's rows into the closing sentence.
    summarize: Callable[[list[dict]], str] | None = None

    def query(self, sql: str, explanation: str = "") -> Plan:
        self.calls.append(("generate_query", {"sql": sql, "explanation": explanation}))
        return self

    def plot(self, title: str, sql: str, spec: dict) -> Plan:
        self.calls.append(("create_plot", {"title": title, "sql": sql, "vega_lite_spec": spec}))
        return self

    def say(self, text: str) -> Plan:
        self.calls.append(("write_to_chat", {"text": text}))
        return self


def bar_spec(x: str, y: str, *, sort: str = "-y") -> dict:
    return {
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": x, "type": "nominal", "sort": sort},
            "y": {"field": y, "type": "quantitative"},
        },
    }


def line_spec(x: str, y: str) -> dict:
    return {
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {"x": {"field": x, "type": "temporal"}, "y": {"field": y, "type": "quantitative"}},
    }


def histogram_sql(col: str, bins: int = 20) -> str:
    x = f"{qi(col)}::DOUBLE"
    return (
        f"WITH s AS (SELECT min({x}) AS lo, max({x}) AS hi FROM data WHERE {qi(col)} IS NOT NULL),\n"
        f"b AS (SELECT CASE WHEN s.hi = s.lo THEN 0 ELSE LEAST(floor(({x} - s.lo) / ((s.hi - s.lo) / {bins})), "
        f"{bins - 1}) END AS bucket, s.lo, s.hi FROM data, s WHERE {qi(col)} IS NOT NULL)\n"
        f"SELECT lo + bucket * (hi - lo) / {bins} AS bin_start, lo + (bucket + 1) * (hi - lo) / {bins} AS bin_end, "
        f"count(*) AS count FROM b GROUP BY bucket, lo, hi ORDER BY bucket"
    )


def histogram_spec(col: str) -> dict:
    return {
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": "bin_start", "type": "quantitative", "bin": {"binned": True}, "title": col},
            "x2": {"field": "bin_end"},
            "y": {"field": "count", "type": "quantitative", "title": "rows"},
        },
    }


class BuiltinProvider(Provider):
    name = "builtin"

    def __init__(self, *, context: DataContext):
        self.context = context
        self.plan: Plan | None = None

    # --- the provider protocol -------------------------------------------------------
    def complete(self, *, messages, tools, on_text, should_stop) -> Turn:
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        question = str(messages[last_user].get("content") or "")
        answered = [m for m in messages[last_user + 1:] if m["role"] == "assistant"]
        if not answered:
            self.plan = self.auto_analysis() if question == AUTO_ANALYSIS_PROMPT else self.decide(question)
            calls = list(self.plan.calls)
            if self.plan.summarize is None:
                calls.append(("finish", {}))
            return Turn(tool_calls=[ToolCall(id=f"call_{i}", name=n, arguments=json.dumps(a))
                                    for i, (n, a) in enumerate(calls)])
        text = ""
        results = [m for m in messages[last_user + 1:] if m["role"] == "tool"]
        query_results = [self._rows(m["content"]) for m, c in zip(results, self._calls_of(messages, last_user))
                         if c == "generate_query"]
        if self.plan and self.plan.summarize and query_results and query_results[0] is not None:
            try:
                text = self.plan.summarize(query_results[0])
            except (KeyError, IndexError, TypeError, ValueError):
                text = ""
        calls = [("write_to_chat", {"text": text})] if text else []
        calls.append(("finish", {}))
        return Turn(tool_calls=[ToolCall(id=f"call_s{i}", name=n, arguments=json.dumps(a))
                                for i, (n, a) in enumerate(calls)])

    @staticmethod
    def _calls_of(messages, last_user) -> list[str]:
        names = []
        for m in messages[last_user + 1:]:
            for call in m.get("tool_calls") or []:
                names.append(call["function"]["name"])
        return names

    @staticmethod
    def _rows(content: str) -> list[dict] | None:
        if not content or content.startswith("Error"):
            return None
        try:
            return json.loads(content)["rows"]
        except (ValueError, KeyError, TypeError):
            return None

    def title(self, *, filename: str, question: str, answer_text: str) -> str:
        words = re.sub(r"\s+", " ", question).strip().rstrip("?")
        if len(words) > 60:
            words = words[:57].rsplit(" ", 1)[0] + "…"
        return f"{words[:1].upper()}{words[1:]} — {filename}"[:200] if words else filename

    # --- reading the question --------------------------------------------------------
    @property
    def columns(self) -> list[dict]:
        return self.context.columns

    def numeric(self, cols=None) -> list[dict]:
        return [c for c in (cols if cols is not None else self.columns) if is_numeric(c["type"])]

    def temporal(self, cols=None) -> list[dict]:
        return [c for c in (cols if cols is not None else self.columns) if is_temporal(c["type"])
                and not c["type"].upper().startswith("TIME ") and c["type"].upper() != "TIME"]

    def textual(self, cols=None) -> list[dict]:
        return [c for c in (cols if cols is not None else self.columns)
                if not is_numeric(c["type"]) and not is_temporal(c["type"])]

    def mentioned(self, text: str) -> list[dict]:
        """Columns named in `text`, in order of appearance (longest name wins on overlaps)."""
        lower = text.lower()
        spans = []
        for col in self.columns:
            name = col["name"].lower()
            for variant in {name, name.replace("_", " "), name.replace(" ", "_")}:
                if not variant.strip():
                    continue
                pattern = r"(?<![\w])" + re.escape(variant) + r"(?:s|es)?(?![\w])"
                for m in re.finditer(pattern, lower):
                    spans.append((m.start(), -(m.end() - m.start()), m.end(), col))
        spans.sort(key=lambda s: (s[0], s[1]))
        found, taken_until, seen = [], -1, set()
        for start, _, end, col in spans:
            if start < taken_until:
                continue
            taken_until = end
            if col["name"] not in seen:
                seen.add(col["name"])
                found.append(col)
        return found

    @staticmethod
    def agg_of(text: str) -> str | None:
        for word in re.findall(r"[a-z]+", text.lower()):
            if word in AGG_WORDS:
                return AGG_WORDS[word]
        if re.search(r"how many", text.lower()):
            return "count"
        return None

    def decide(self, question: str) -> Plan:
        q = question.strip()
        lower = q.lower()
        if re.match(r"^\s*(select|with|from)\b", q, re.IGNORECASE) or lower.startswith("sql:"):
            sql = q[4:].strip() if lower.startswith("sql:") else q
            return Plan(summarize=lambda rows: f"The query returned {fmt(len(rows))} row(s) (first rows shown)."
                        if len(rows) >= 20 else f"The query returned {fmt(len(rows))} row(s).").query(sql, "Your SQL")
        if re.search(r"how many columns|number of columns|column count|which columns|what columns|list (the )?columns",
                     lower):
            names = ", ".join(f"{c['name']} ({c['type']})" for c in self.columns)
            return Plan().say(f"The file has {len(self.columns)} columns: {names}.")
        cols = self.mentioned(q)
        if re.search(r"how many (rows|records|lines|entries)|row count|number of (rows|records)|count (the |all )?rows"
                     r"|how (big|large) is", lower) and not re.search(r"\b(by|per|for each)\b", lower):
            return self.row_count()
        if "correlat" in lower or re.search(r"\brelationship between\b", lower):
            return self.correlation(cols)
        if re.search(r"over time|trend|time series|\b(per|by|each) (hour|day|date|week|month|quarter|year)\b"
                     r"|\b(hourly|daily|weekly|monthly|yearly|annual)\b", lower):
            return self.over_time(lower, cols)
        top = re.search(r"\b(top|bottom|highest|lowest|largest|smallest|biggest|most|least)\b\s*(\d+)?", lower)
        if top and cols:
            return self.top_n(lower, cols, direction=TOP_WORDS[top.group(1)], n=int(top.group(2) or 10))
        if re.search(r"distribut|histogram|spread|value counts|frequenc|breakdown", lower) and cols:
            return self.distribution(cols[0])
        agg = self.agg_of(lower)
        if agg and (cols or agg == "count"):
            return self.aggregate(lower, cols, agg)
        if re.search(r"describe|tell me about|summar|statistic|\bstats\b|profile|overview|about the data", lower):
            if cols:
                return self.describe(cols[0])
            return self.overview_plan()
        return self.cannot(question)

    # --- plans -------------------------------------------------------------------------
    def row_count(self) -> Plan:
        return Plan(summarize=lambda rows: f"The data has {fmt(rows[0]['row_count'])} rows and "
                                           f"{len(self.columns)} columns.").query(
            "SELECT count(*) AS row_count FROM data", "Count the rows")

    def correlation(self, cols) -> Plan:
        nums = self.numeric(cols)
        if len(nums) < 2:
            examples = ", ".join(c["name"] for c in self.numeric()[:4]) or "(no numeric columns)"
            return Plan().say(f"To compute a correlation, name two numeric columns, e.g. “correlation of A and B”. "
                              f"Numeric columns: {examples}.")
        x, y = nums[0]["name"], nums[1]["name"]
        where = f"{qi(x)} IS NOT NULL AND {qi(y)} IS NOT NULL"

        def summarize(rows):
            r = rows[0]["correlation"]
            if r is None:
                return f"The correlation between {x} and {y} is undefined (constant values or too few rows)."
            strength = ("very strong" if abs(r) >= 0.8 else "strong" if abs(r) >= 0.6 else "moderate"
                        if abs(r) >= 0.4 else "weak" if abs(r) >= 0.2 else "little or no")
            sign = "positive" if r > 0 else "negative"
            rel = f"{strength} {sign}" if strength != "little or no" else "little or no linear"
            return (f"The Pearson correlation between {x} and {y} is {r:.3f} over {fmt(rows[0]['pairs'])} rows: "
                    f"{rel} relationship.")

        plan = Plan(summarize=summarize).query(
            f"SELECT corr({qi(x)}, {qi(y)}) AS correlation, count(*) AS pairs FROM data WHERE {where}",
            f"Pearson correlation of {x} and {y}")
        return plan.plot(
            f"{y} vs {x}",
            f"SELECT {qi(x)}, {qi(y)} FROM (SELECT {qi(x)}, {qi(y)} FROM data WHERE {where}) "
            f"USING SAMPLE reservoir(2000 ROWS) REPEATABLE (42)",
            {"mark": {"type": "point", "tooltip": True, "opacity": 0.6},
             "encoding": {"x": {"field": x, "type": "quantitative", "scale": {"zero": False}},
                          "y": {"field": y, "type": "quantitative", "scale": {"zero": False}}}},
        )

    def _grain(self, lower: str, tcol: str) -> str:
        for word in re.findall(r"[a-z]+", lower):
            if word in GRAINS and word != "date":
                return GRAINS[word]
        prof = self.context.profile_of(tcol)
        lo, hi = str(prof.get("min") or ""), str(prof.get("max") or "")
        try:
            from datetime import date

            days = (date.fromisoformat(hi[:10]) - date.fromisoformat(lo[:10])).days
        except ValueError:
            return "day"
        if days > 3 * 365:
            return "month"
        if days > 120:
            return "week"
        if days >= 2:
            return "day"
        return "hour"

    def over_time(self, lower: str, cols) -> Plan:
        temporal = self.temporal(cols) or self.temporal()
        if not temporal:
            return Plan().say("I could not find a date or timestamp column in this file, so I cannot chart values "
                              "over time.")
        tcol = temporal[0]["name"]
        nums = [c for c in self.numeric(cols) if c["name"] != tcol]
        agg = self.agg_of(lower) or ("sum" if nums else "count")
        grain = self._grain(lower, tcol)
        if agg == "count" or not nums:
            agg, value, label = "count", "count(*)", "count"
        else:
            value, label = f"{agg}({qi(nums[0]['name'])})", f"{agg}_{nums[0]['name']}"
        sql = (f"SELECT date_trunc('{grain}', {qi(tcol)}) AS period, {value} AS {qi(label)} FROM data "
               f"WHERE {qi(tcol)} IS NOT NULL GROUP BY 1 ORDER BY 1")
        what = "rows" if agg == "count" else f"{AGG_LABEL[agg]} {nums[0]['name']}"

        def summarize(rows):
            if not rows:
                return "There are no dated rows."
            peak = max(rows, key=lambda r: (r[label] is not None, r[label] or 0))
            return (f"{what.capitalize()} per {grain} over {fmt(len(rows))} periods "
                    f"(from {rows[0]['period']} to {rows[-1]['period']}, first rows shown if many); the highest "
                    f"is {fmt(peak[label])} in {peak['period']}.")

        plan = Plan(summarize=summarize).query(sql, f"{what} per {grain}")
        return plan.plot(f"{what.capitalize()} per {grain}", sql, line_spec("period", label))

    def top_n(self, lower: str, cols, *, direction: str, n: int) -> Plan:
        n = max(1, min(n, 1000))
        by_match = re.search(r"\bby\b(.*)$", lower)
        by_cols = self.mentioned(by_match.group(1)) if by_match else []
        head_cols = self.mentioned(lower[: by_match.start()]) if by_match else cols
        agg = self.agg_of(by_match.group(1) if by_match else lower)
        measure = (self.numeric(by_cols) or self.numeric(cols))
        group = [c for c in self.textual(head_cols) + self.temporal(head_cols)]
        order = "DESC" if direction == "desc" else "ASC"
        word = "top" if direction == "desc" else "bottom"
        if group and (measure or agg == "count"):
            g = group[0]["name"]
            if agg is None:
                agg = "sum"
            if agg == "count" or not measure:
                agg, value, label = "count", "count(*)", "count"
            else:
                value, label = f"{agg}({qi(measure[0]['name'])})", f"{agg}_{measure[0]['name']}"
            sql = (f"SELECT {qi(g)}, {value} AS {qi(label)} FROM data GROUP BY 1 "
                   f"ORDER BY 2 {order} NULLS LAST LIMIT {n}")

            def summarize(rows):
                if not rows:
                    return "No rows."
                return (f"The {word} {len(rows)} {g} values by {label.replace('_', ' ')}: first is {rows[0][g]} "
                        f"with {fmt(rows[0][label])}.")

            return Plan(summarize=summarize).query(sql, f"{word} {n} {g} by {label}").plot(
                f"{word.capitalize()} {n} {g} by {label.replace('_', ' ')}", sql,
                bar_spec(g, label, sort="-y" if direction == "desc" else "y"))
        nums = self.numeric(by_cols) or self.numeric(cols)
        if not nums:
            return self.cannot(lower)
        x = nums[0]["name"]
        sql = f"SELECT * FROM data ORDER BY {qi(x)} {order} NULLS LAST LIMIT {n}"
        return Plan(summarize=lambda rows: f"The {word} {len(rows)} rows by {x}; the first has {x} = "
                                           f"{fmt(rows[0][x])}." if rows else "No rows.").query(
            sql, f"{word} {n} rows by {x}")

    def aggregate(self, lower: str, cols, agg: str) -> Plan:
        by_match = re.search(r"\b(by|per|for each|grouped by|across)\b(.*)$", lower)
        group_cols = self.mentioned(by_match.group(2)) if by_match else []
        head_cols = self.mentioned(lower[: by_match.start()]) if by_match else cols
        measure = [c for c in self.numeric(head_cols) if c not in group_cols]
        if agg != "count" and not measure:
            if agg in ("min", "max") and head_cols:
                measure = [c for c in head_cols if c not in group_cols]
            else:
                names = ", ".join(c["name"] for c in self.numeric()[:5]) or "(none)"
                return Plan().say(f"Which numeric column should I {AGG_LABEL[agg]}? Numeric columns: {names}.")
        if agg == "count":
            value, label, what = "count(*)", "count", "number of rows"
        else:
            m = measure[0]["name"]
            value, label, what = f"{agg}({qi(m)})", f"{agg}_{m}", f"{AGG_LABEL[agg]} of {m}"
        if not group_cols:
            sql = f"SELECT {value} AS {qi(label)} FROM data"
            return Plan(summarize=lambda rows: f"The {what} is {fmt(rows[0][label])}.").query(sql, what)
        g = group_cols[0]
        temporal = is_temporal(g["type"])
        order = "ORDER BY 1" if temporal else "ORDER BY 2 DESC NULLS LAST"
        sql = f"SELECT {qi(g['name'])}, {value} AS {qi(label)} FROM data GROUP BY 1 {order}"

        def summarize(rows):
            if not rows:
                return "No rows."
            best = max(rows, key=lambda r: (r[label] is not None, r[label] or 0))
            return (f"The {what} by {g['name']} over {fmt(len(rows))} groups"
                    f"{' (first rows shown)' if len(rows) >= 20 else ''}: the largest is {best[g['name']]} with "
                    f"{fmt(best[label])}.")

        plan = Plan(summarize=summarize).query(sql, f"{what} by {g['name']}")
        if temporal:
            return plan.plot(f"{what.capitalize()} by {g['name']}", sql, line_spec(g["name"], label))
        # Few groups: the chart reuses the query's rows; many: it shows the largest 50.
        many = self.context.profile_of(g["name"]).get("distinct", 51) > 50
        return plan.plot(f"{what.capitalize()} by {g['name']}" + (" (top 50)" if many else ""),
                         f"{sql} LIMIT 50" if many else sql, bar_spec(g["name"], label))

    def distribution(self, col: dict) -> Plan:
        name = col["name"]
        if is_numeric(col["type"]):
            sql = histogram_sql(name)

            def summarize(rows):
                peak = max(rows, key=lambda r: r["count"])
                return (f"Distribution of {name} in {len(rows)} equal-width bins; the most common range is "
                        f"{fmt(peak['bin_start'])} to {fmt(peak['bin_end'])} ({fmt(peak['count'])} rows).")

            return Plan(summarize=summarize).query(sql, f"histogram of {name}").plot(
                f"Distribution of {name}", sql, histogram_spec(name))
        if is_temporal(col["type"]):
            return self.over_time("", [col])
        sql = f"SELECT {qi(name)}, count(*) AS count FROM data GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 30"

        def summarize_text(rows):
            return (f"The most frequent {name} values (top {len(rows)} shown): {rows[0][name]} "
                    f"({fmt(rows[0]['count'])} rows)" + (f", then {rows[1][name]} ({fmt(rows[1]['count'])})"
                                                         if len(rows) > 1 else "") + ".")

        return Plan(summarize=summarize_text).query(sql, f"value counts of {name}").plot(
            f"Most frequent {name}", sql, bar_spec(name, "count"))

    def describe(self, col: dict) -> Plan:
        name = col["name"]
        q = qi(name)
        if is_numeric(col["type"]):
            sql = (f"SELECT count(*) AS rows, count({q}) AS non_null, count(DISTINCT {q}) AS distinct_values, "
                   f"min({q}) AS min, max({q}) AS max, avg({q}) AS mean, median({q}) AS median, "
                   f"stddev_samp({q}) AS std FROM data")

            def summarize(rows):
                r = rows[0]
                return (f"{name} ({col['type']}): {fmt(r['non_null'])} values ({fmt(r['rows'] - r['non_null'])} "
                        f"missing), {fmt(r['distinct_values'])} distinct, from {fmt(r['min'])} to {fmt(r['max'])}, "
                        f"mean {fmt(r['mean'])}, median {fmt(r['median'])}, standard deviation {fmt(r['std'])}.")

            return Plan(summarize=summarize).query(sql, f"statistics of {name}").plot(
                f"Distribution of {name}", histogram_sql(name), histogram_spec(name))
        sql = (f"SELECT count(*) AS rows, count({q}) AS non_null, count(DISTINCT {q}) AS distinct_values, "
               f"min({q}) AS min, max({q}) AS max, mode({q}) AS most_frequent FROM data")

        def summarize_text(rows):
            r = rows[0]
            return (f"{name} ({col['type']}): {fmt(r['non_null'])} values ({fmt(r['rows'] - r['non_null'])} "
                    f"missing), {fmt(r['distinct_values'])} distinct, from {r['min']} to {r['max']}; most frequent: "
                    f"{r['most_frequent']}.")

        plan = Plan(summarize=summarize_text).query(sql, f"statistics of {name}")
        if is_temporal(col["type"]):
            return plan
        top_sql = f"SELECT {q}, count(*) AS count FROM data GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20"
        return plan.plot(f"Most frequent {name}", top_sql, bar_spec(name, "count"))

    def cannot(self, question: str) -> Plan:
        nums = [c["name"] for c in self.numeric()]
        texts = [c["name"] for c in self.textual()]
        examples = ["How many rows are there?"]
        if nums:
            examples.append(f"Describe {nums[0]}")
            examples.append(f"Distribution of {nums[0]}")
        if nums and texts:
            examples.append(f"Sum of {nums[0]} by {texts[0]}")
            examples.append(f"Top 10 {texts[0]} by total {nums[0]}")
        if len(nums) >= 2:
            examples.append(f"Correlation of {nums[0]} and {nums[1]}")
        if self.temporal() and nums:
            examples.append(f"{nums[0]} over time")
        examples.append("SELECT … FROM data (your own SQL)")
        return Plan().say(
            "The built-in analyst cannot answer that question: it only understands common question shapes. An LLM "
            "provider is needed for free-form questions (set ANALYZER_LLM_PROVIDER=openai with an "
            "OpenAI-compatible endpoint). You can ask, for example: " + "; ".join(examples) + "."
        )

    def overview_text(self) -> str:
        ctx = self.context
        nums, texts, temps = self.numeric(), self.textual(), self.temporal()
        parts = [f"{ctx.filename} has {fmt(ctx.row_count)} rows and {len(ctx.columns)} columns "
                 f"({len(nums)} numeric, {len(texts)} text, {len(temps)} date/time)."]
        with_nulls = [p for p in ctx.profile if p.get("nulls")]
        if with_nulls:
            worst = sorted(with_nulls, key=lambda p: -p["nulls"])[:3]
            parts.append("Missing values: " + ", ".join(f"{p['name']} {p['null_fraction']:.1%}" for p in worst) + ".")
        else:
            parts.append("No column has missing values.")
        if ctx.detection.get("rejected_rows"):
            parts.append(f"{fmt(ctx.detection['rejected_rows'])} malformed rows were skipped while reading.")
        for p in ctx.profile[:8]:
            if p.get("kind") == "numeric" and "mean" in p:
                parts.append(f"{p['name']} ranges from {fmt(p.get('min'))} to {fmt(p.get('max'))} "
                             f"(mean {fmt(p.get('mean'))}).")
            elif p.get("top_values"):
                parts.append(f"{p['name']}: about {fmt(p['distinct'])} distinct values, most common "
                             f"{', '.join(str(v) for v in p['top_values'][:3])}.")
        return " ".join(parts)

    def overview_plan(self) -> Plan:
        return Plan().say(self.overview_text())

    def auto_analysis(self) -> Plan:
        plan = Plan().say(self.overview_text())
        rows = self.context.row_count
        nums = [c for c in self.numeric()
                if not (re.search(r"(^|_)id$", c["name"].lower())
                        and self.context.profile_of(c["name"]).get("distinct", 0) >= 0.9 * rows)]
        texts = [c for c in self.textual()
                 if 2 <= self.context.profile_of(c["name"]).get("distinct", 0) <= 50]
        temps = self.temporal()
        if nums:
            n = nums[0]["name"]
            plan.plot(f"Distribution of {n}", histogram_sql(n), histogram_spec(n))
        if texts:
            t = texts[0]["name"]
            sql = f"SELECT {qi(t)}, count(*) AS count FROM data GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 30"
            plan.plot(f"Rows per {t}", sql, bar_spec(t, "count"))
        if temps:
            tc = temps[0]["name"]
            grain = self._grain("", tc)
            if nums:
                label = f"sum_{nums[0]['name']}"
                value = f"sum({qi(nums[0]['name'])})"
                title = f"Total {nums[0]['name']} per {grain}"
            else:
                label, value, title = "count", "count(*)", f"Rows per {grain}"
            sql = (f"SELECT date_trunc('{grain}', {qi(tc)}) AS period, {value} AS {qi(label)} FROM data "
                   f"WHERE {qi(tc)} IS NOT NULL GROUP BY 1 ORDER BY 1")
            plan.plot(title, sql, line_spec("period", label))
        elif len(nums) >= 2:
            a, b = nums[0]["name"], nums[1]["name"]
            plan.plot(f"{b} vs {a}",
                      f"SELECT {qi(a)}, {qi(b)} FROM data USING SAMPLE reservoir(2000 ROWS) REPEATABLE (42)",
                      {"mark": {"type": "point", "tooltip": True, "opacity": 0.6},
                       "encoding": {"x": {"field": a, "type": "quantitative", "scale": {"zero": False}},
                                    "y": {"field": b, "type": "quantitative", "scale": {"zero": False}}}})
        return plan.say("Ask a question below — for example: " + "; ".join(self.examples()) + ".")

    def examples(self) -> list[str]:
        nums = [c["name"] for c in self.numeric()]
        texts = [c["name"] for c in self.textual()]
        out = ["How many rows are there?"]
        if nums and texts:
            out.append(f"Average {nums[0]} by {texts[0]}")
        if nums:
            out.append(f"Describe {nums[0]}")
        if self.temporal() and nums:
            out.append(f"{nums[0]} over time")
        return out
