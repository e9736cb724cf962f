"""From a frame to one intent the analyst can answer, or a question back naming the candidates."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from analyzer.agent.builtin.filters import Filter, names
from analyzer.agent.builtin.frame import Frame
from analyzer.agent.builtin.schema import Column, Mention, Schema
from analyzer.agent.builtin.vocab import ADDITIVE, AGG_LABEL as AGG_WORDS


@dataclass
class Intent:
    kind: str  # aggregate | rows | distinct | missing | correlation | scatter | histogram | share | trend | season
    #            | describe | overview | columns | values
    agg: str | None = None
    measure: Column | None = None
    second: Column | None = None
    groups: list[Column] = field(default_factory=list)
    time: Column | None = None
    grain: str | None = None
    season: str | None = None
    filters: list[Filter] = field(default_factory=list)
    join: str = "AND"
    condition: list[Filter] = field(default_factory=list)  # of a share: the part counted
    order: str | None = None
    n: int | None = None
    chart: str | None = None
    target: Column | None = None


@dataclass
class Ask:
    text: str
    refused: bool = False  # nothing the analyst can do (as opposed to: tell me which one)


def _additive(col: Column) -> bool:
    return bool(set(col.words) & ADDITIVE)


def _default_agg(col: Column) -> str:
    return "sum" if _additive(col) else "avg"


def intent_resolve(frame: Frame, schema: Schema) -> Intent | Ask:
    if re.match(r"^\W*(why|how come|explain|predict|forecast|what if|should)\b", frame.question.lower()):
        return Ask("", refused=True)  # reasons and forecasts are beyond what a query shows
    if frame.problems:
        return Ask(frame.problems[0])
    cues = frame.cues
    if "columns" in cues:
        return Intent("columns")
    free_cols: list[Column] = []
    for m in frame.free:
        if m.column is None and frame.rank_measure:  # "the longest beak": beak length, not beak depth
            narrowed = [c for c in m.columns if c in schema.find(frame.rank_measure)]
            m.columns = narrowed if len(narrowed) == 1 else m.columns
        if m.column is None:
            return _ambiguous(m, frame)
        if m.column not in free_cols and m.column not in frame.groups:
            free_cols.append(m.column)
    numeric = [c for c in free_cols if c.kind == "numeric" and not c.is_year]
    times = [c for c in free_cols if c.is_time]
    texts = [c for c in free_cols if c.kind == "text"]
    base = dict(filters=frame.filters, join=frame.join, chart=frame.chart)

    if "missing" in cues:
        return Intent("missing", target=free_cols[0] if free_cols else None, **base)
    if "correlation" in cues or ("scatter" in cues and len(numeric) >= 2):
        if len(numeric) < 2:
            return Ask(f"Which two numeric columns? Numeric columns: {names(schema.numeric()[:10])}.")
        kind = "scatter" if "scatter" in cues or (frame.chart and "correlation" not in cues) else "correlation"
        return Intent(kind, measure=numeric[0], second=numeric[1], groups=frame.groups[:1], **base)
    if frame.season or "trend" in cues:
        return _over_time(frame, schema, numeric, times, base)
    if "histogram" in cues:
        target = (numeric or free_cols or [None])[0]
        if target is None:
            return Ask(f"The distribution of which column? Columns: {names(schema.columns[:12])}.")
        if target.kind == "text":
            return Intent("aggregate", agg="count", groups=[target], order="desc", **base)
        if target.is_time:
            return _over_time(frame, schema, [], [target], base)
        return Intent("histogram", measure=target, groups=frame.groups[:1], **base)
    if "share" in cues:
        return _share(frame, numeric, texts, base)
    if ("distinct" in cues or "types" in cues) and (texts or times or free_cols) and not frame.order \
            and not frame.groups:
        target = (texts or free_cols)[0]
        return Intent("distinct", target=target, agg="count" if frame.how_many else None, **base)
    if frame.order or frame.rank_measure:
        return _ranked(frame, schema, numeric, texts, free_cols, base)
    if frame.agg and frame.agg != "count":
        return _aggregate(frame, schema, numeric, free_cols, base)
    if frame.how_many:
        target = frame.how_many_of
        if target is not None and target.kind == "text" and target.distinct <= max(50, schema.row_count // 2):
            return Intent("distinct", target=target, agg="count", **base)
        if target is not None and target.kind == "numeric" and not target.is_year and _additive(target):
            return Intent("aggregate", agg="sum", measure=target, groups=frame.groups,
                          order="desc" if frame.groups else None, **base)
        counted = re.search(r"\b(each|every|per)\b", frame.question.lower()) or (
            not re.search(r"\bhow many\b|\bnumber of\b", frame.question.lower()))  # "species count"
        groups = frame.groups or ([texts[0]] if texts and counted and texts[0].distinct <= 1000 else [])
        return Intent("aggregate", agg="count", groups=groups, order="desc" if groups else None, **base)
    if "describe" in cues:
        if free_cols:
            return Intent("describe", target=free_cols[0], **base)
        return Intent("overview")
    if numeric and frame.groups:
        return Intent("aggregate", agg=_default_agg(numeric[0]), measure=numeric[0], groups=frame.groups, **base)
    if frame.groups and not free_cols:
        return Intent("aggregate", agg="count", groups=frame.groups, order="desc", **base)
    if frame.filters and all(c.kind == "text" and c.distinct >= 0.9 * schema.row_count for c in free_cols):
        return Intent("rows", n=None, **base)  # "countries with health below 55": the rows themselves
    if len(numeric) == 1 and len(free_cols) == 1 and frame.filters:
        # "deaths from landslides between 1980 and 1990": a total of what adds up, else its statistics
        if _additive(numeric[0]):
            return Intent("aggregate", agg="sum", measure=numeric[0], **base)
        return Intent("describe", target=numeric[0], **base)
    if len(free_cols) == 1 and not frame.filters:
        col = free_cols[0]
        if col.kind == "text" and frame.chart:
            return Intent("aggregate", agg="count", groups=[col], order="desc", **base)
        return Intent("describe", target=col, **base)
    return Ask("", refused=True)


def _ambiguous(m: Mention, frame: Frame) -> Ask:
    words = " ".join(frame.question.split())
    return Ask(f"Which column do you mean: {names(m.columns)}? (in “{words[:80]}”)")


def _over_time(frame, schema, numeric, times, base) -> Intent | Ask:
    time_cols = times or schema.time()
    if not time_cols:
        return Ask("This file has no date or year column, so I cannot show values over time. Columns: "
                   f"{names(schema.columns[:12])}.", refused=True)
    tcol = time_cols[0]
    if frame.season and tcol.kind != "temporal":
        return Ask(f"{tcol.name} holds whole years, so there is no month or weekday to compare.", refused=True)
    measure = next((c for c in numeric if c is not tcol), None)
    if measure is None and frame.rank_measure and frame.rank_measure != "@time":
        found = [c for c in schema.find(frame.rank_measure) if c.kind == "numeric"]
        if len(found) > 1:
            return Ask(f"Which column do you mean: {names(found)}?")
        measure = found[0] if found else None
    agg = frame.agg if frame.agg and not (frame.agg == "count" and measure) else None
    if measure is None:
        agg = "count"
    agg = agg or _default_agg(measure)
    grain = frame.grain or None
    kind = "season" if frame.season else "trend"
    return Intent(kind, agg=agg, measure=measure, time=tcol, grain=grain, season=frame.season,
                  groups=frame.groups[:1], order=frame.order if frame.season else None, **base)


def _share(frame, numeric, texts, base) -> Intent | Ask:
    measure = numeric[0] if numeric and _additive(numeric[0]) else None
    groups = frame.groups or ([texts[0]] if texts and not frame.filters else [])
    if groups:
        return Intent("share", agg="sum" if measure else "count", measure=measure, groups=groups[:1],
                      filters=frame.filters, chart=frame.chart, order="desc")
    if not frame.filters:
        return Ask("A share of what? Name a category or a condition, e.g. “percentage of rows where … ” or "
                   "“share of each …”.")
    ordered = sorted(frame.filters, key=lambda f: f.start)
    # "what percentage of Adelie penguins are female": the last condition is counted, the others select.
    return Intent("share", agg="sum" if measure else "count", measure=measure, condition=ordered[-1:],
                  filters=ordered[:-1], chart=frame.chart)


def _ranked(frame, schema, numeric, texts, free_cols, base) -> Intent | Ask:
    measure = numeric[0] if numeric else None
    if frame.order_by is not None and frame.order_by.kind == "numeric":
        measure = frame.order_by
    found = []
    if frame.rank_measure and frame.order_by is None:
        words = frame.rank_measure
        found = schema.time() if words == "@time" else [c for c in schema.find(words) if c.kind == "numeric"]
        if len(found) > 1 and numeric:
            found = [c for c in found if c in numeric] or found
        if len(found) == 1:
            measure = found[0]  # "the mpg of the lightest car": ranked by weight
    if measure is None and frame.rank_measure:
        if len(found) > 1:
            return Ask(f"Which column do you mean: {names(found)}?")
        measure = found[0] if found else None
        if measure is None:
            return Ask(f"I could not find the column that “{frame.question}” ranks by. Numeric columns: "
                       f"{names(schema.numeric()[:10])}.")
    order = frame.order or "desc"
    heads = texts and (texts[0].distinct <= 50 or texts[0].distinct < 0.5 * schema.row_count) and (
        frame.which in ("group", "row") or frame.n or re.search(r"\b(top|bottom)\b", frame.question.lower()))
    groups = frame.groups or ([frame.subject] if frame.subject else [texts[0]] if heads else [])
    if frame.subject is not None and measure is frame.subject:
        measure = next((c for c in numeric if c is not frame.subject), None)
    if frame.which == "time" and schema.time() and not frame.groups:
        tcol = next((c for c in free_cols if c.is_time and c is not measure), schema.time()[0])
        agg = frame.agg if frame.agg not in (None, "count") else None
        agg = (agg or _default_agg(measure)) if measure is not None else "count"
        return Intent("trend", agg=agg, measure=measure, time=tcol, grain=frame.grain or "year", order=order,
                      n=frame.n, **base)
    if groups:
        agg = frame.agg if frame.agg not in (None, "count") else None
        if measure is None:
            agg = "count"
        agg = agg or _default_agg(measure) if measure is not None else "count"
        if frame.agg == "count" and measure is None:
            agg = "count"
        return Intent("aggregate", agg=agg, measure=measure, groups=groups, order=order, n=frame.n, **base)
    if measure is None:
        if texts and (texts[0].distinct <= 50 or texts[0].distinct < 0.5 * schema.row_count):
            return Intent("aggregate", agg="count", groups=[texts[0]], order=order, n=frame.n, **base)
        return Ask(f"Ranked by which column? Numeric columns: {names(schema.numeric()[:10])}.")
    if frame.agg in ("avg", "sum", "median") and not frame.groups:
        if frame.which:  # "which stock has the highest average price" with no column for stocks
            texts_all = [c for c in schema.text() if not schema.id_like(c)] or schema.text()
            return Ask(f"Which column holds what you want ranked by {AGG_WORDS[frame.agg]} {measure.name}? Text "
                       f"columns: {names(texts_all[:10])}.")
        return Intent("aggregate", agg=frame.agg, measure=measure, **base)
    if measure.kind == "text":
        return Ask(f"{measure.name} is text, so it has no highest or lowest value; did you mean the most frequent "
                   f"{measure.name}?")
    return Intent("rows", measure=measure, order=order, n=frame.n or 1 if not re.search(
        r"\btop\b|\bbottom\b", frame.question.lower()) else frame.n or 10, **base)


def _aggregate(frame, schema, numeric, free_cols, base) -> Intent | Ask:
    measure = numeric[0] if numeric else None
    if measure is None:
        others = [c for c in free_cols if c not in frame.groups]
        if others and frame.agg in ("min", "max") and others[0].is_time:
            measure = others[0]
        elif others:
            return Ask(f"{others[0].name} is not a numeric column. Did you mean the number of rows per "
                       f"{others[0].name}, or one of {names(schema.numeric()[:10])}?")
        elif frame.unknown:
            return Ask(f"I could not find “{' '.join(frame.unknown[:3])}” among the columns. Which column do you mean? "
                       f"Numeric columns: {names(schema.numeric()[:10])}.")
        else:
            return Ask(f"Which column? Numeric columns: {names(schema.numeric()[:10])}.")
    if frame.agg in ("min", "max") and not frame.groups and measure.kind == "numeric":
        # The minimum or maximum together with the row that has it.
        return Intent("rows", measure=measure, order="desc" if frame.agg == "max" else "asc", n=1, **base)
    return Intent("aggregate", agg=frame.agg, measure=measure, groups=frame.groups,
                  order="desc" if frame.groups else None, **base)
