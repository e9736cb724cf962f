"""Filters a question sets: comparisons with numbers ("more than 6 cylinders", "after 1975", "between 3000
and 4000 g"), years and months of a date column, and values of a category ("female", "Gentoo", "rain")."""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.agent.builtin.schema import Column, Mention
from analyzer.agent.builtin.vocab import COMPARATIVE_MEASURE, COMPARISONS, MONTHS, RANK_WORDS, SUPERLATIVES, UNITS
from analyzer.duck import quote_ident as qi
from analyzer.duck import sql_literal

LINK = {"is", "are", "was", "were", "of", "with", "a", "an", "the", "has", "have", "had", "that", "who", "which",
        "be", "been", "being", "their", "its", "value", "whose", "where", "when"}
UNIT_WORDS = UNITS | {"gram", "grams", "kilogram", "pound", "pounds", "degree", "degrees", "millimeter", "mm",
                      "inch", "inches", "meter", "meters", "mile", "miles", "hp", "lb", "unit", "units", "cm",
                      "celsius", "fahrenheit", "dollar", "dollars", "people", "percent"}
UNIT_NAMES = {"grams": "g", "gram": "g", "kilograms": "kg", "pounds": "lbs", "pound": "lbs", "lb": "lbs",
              "millimeters": "mm", "millimetres": "mm", "inches": "in", "degrees": "c", "percent": "%"}
NEGATIONS = {"no", "not", "non", "excluding", "except", "without", "besides", "exclude", "other"}


PATTERNS = sorted(COMPARISONS, key=lambda p: -len(p[0]))


@dataclass
class Filter:
    column: Column
    op: str  # = != > >= < <= between in notin
    value: object
    part: str = ""  # "year" / "month": compared with that part of a date column
    start: int = -1

    def expr(self) -> str:
        col = qi(self.column.name)
        if self.part == "year":
            col = f"year({col})"
        elif self.part == "date":
            col = f"CAST({col} AS DATE)"
        elif self.part == "month":
            col = f"month({col})"
        lit = (lambda v: sql_literal(v) if isinstance(v, str) else _num(v))
        if self.op == "between":
            return f"{col} BETWEEN {lit(self.value[0])} AND {lit(self.value[1])}"
        if self.op in ("in", "notin"):
            values = ", ".join(lit(v) for v in self.value)
            return f"{col} {'NOT IN' if self.op == 'notin' else 'IN'} ({values})"
        return f"{col} {self.op} {lit(self.value)}"

    def words(self) -> str:
        name = f"{self.part} of {self.column.name}" if self.part else self.column.name
        if self.op == "between":
            return f"{name} between {_num(self.value[0])} and {_num(self.value[1])}"
        if self.op in ("in", "notin"):
            return f"{name} {'not ' if self.op == 'notin' else ''}in ({', '.join(map(str, self.value))})"
        value = self.value if isinstance(self.value, str) else _num(self.value)
        return f"{name} {self.op} {value}"


def _num(value) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def mention_at(mentions: list[Mention], start: int) -> Mention | None:
    return next((m for m in mentions if m.start == start), None)


def comparisons_read(frame, tokens, mentions, schema, used, bound) -> None:
    patterns = PATTERNS
    i = 0
    while i < len(tokens):
        if tokens[i].text == "between" or (tokens[i].text == "from" and i + 3 < len(tokens)
                                           and tokens[i + 2].text == "to"):
            if i + 3 < len(tokens) and tokens[i + 1].number is not None and tokens[i + 3].number is not None \
                    and tokens[i + 2].text in ("and", "to"):
                lo, hi = sorted((tokens[i + 1].number, tokens[i + 3].number))
                col = _bind(frame, tokens, mentions, schema, i, i + 4, lo, bound)
                if col:
                    frame.filters.append(Filter(col[0], "between", (lo, hi), col[1], i))
                used.update(range(i, i + 4))
                i += 4
                continue
        for words, op in patterns:
            n = len(words)
            if tuple(t.text for t in tokens[i:i + n]) != words:
                continue
            j = i + n
            if j < len(tokens) and tokens[j].text in ("a", "an", "the", "$"):
                j += 1
            if j >= len(tokens) or tokens[j].number is None:
                break
            value = tokens[j].number
            measure = COMPARATIVE_MEASURE.get(words[0])
            col = None
            if measure:
                found = [c for c in schema.find(measure) if c.kind == "numeric"]
                col = (found[0], "") if len(found) == 1 else None
            col = col or _bind(frame, tokens, mentions, schema, i, j + 1, value, bound,
                               time_only=op in (">", ">=", "<", "<=") and words[0] in ("after", "since", "before",
                                                                                       "until"))
            if col:
                frame.filters.append(Filter(col[0], op, value, col[1], i))
            used.update(range(i, j + 1))
            i = j
            break
        else:
            after = mention_at(mentions, i + 1)
            if tokens[i].text in ("no", "zero") and after is not None and after.column is not None \
                    and after.column.kind == "numeric":
                frame.filters.append(Filter(after.column, "=", 0.0, "", i))  # "days with no precipitation"
                bound.add(id(after))
                used.add(i)
                i += 1
                continue
            if tokens[i].date and i not in used:
                temporal = [c for c in schema.time() if c.kind == "temporal"]
                ops = {"before": "<", "after": ">", "since": ">=", "until": "<="}
                op = ops.get(tokens[i - 1].text, "=") if i else "="
                if temporal:
                    frame.filters.append(Filter(temporal[0], op, tokens[i].date, "date", i))
                    used.update((i - 1, i) if op != "=" else (i,))
                else:
                    frame.problems.append(f"This file has no date column to select {tokens[i].date} by.")
                i += 1
                continue
            if tokens[i].number is not None and i not in used and after is not None and after.column is not None \
                    and after.column.kind == "numeric" and 0 < after.column.distinct <= 20 \
                    and (i == 0 or tokens[i - 1].text not in ("top", "bottom", "first", "last", *RANK_WORDS,
                                                              *SUPERLATIVES)) \
                    and tokens[i].number.is_integer() \
                    and (after.column.profile.get("min") or 0) <= tokens[i].number \
                    <= (after.column.profile.get("max") or 0):
                frame.filters.append(Filter(after.column, "=", tokens[i].number, "", i))
                bound.add(id(after))
                used.add(i)
            elif tokens[i].text in ("in", "during", "of", "for") and i + 1 < len(tokens):
                nxt = tokens[i + 1]
                if nxt.number is not None and nxt.number.is_integer() and 1800 <= nxt.number <= 2100:
                    col = _time_column(schema, mentions, bound, i)
                    if col:
                        frame.filters.append(Filter(col[0], "=", nxt.number, col[1], i))
                        used.update((i, i + 1))
                    elif not mention_at(mentions, i + 2):
                        frame.problems.append(f"This file has no date or year column to select {_num(nxt.number)} "
                                              f"by. Columns: {names(schema.columns[:12])}.")
                elif nxt.text in MONTHS and (nxt.text != "may" or tokens[i].text in ("in", "during")):
                    temporal = [c for c in schema.time() if c.kind == "temporal"]
                    if temporal:
                        frame.filters.append(Filter(temporal[0], "=", MONTHS[nxt.text], "month", i))
                        used.update((i, i + 1))
        i += 1


def _time_column(schema, mentions, bound, at) -> tuple[Column, str] | None:
    named = [m.column for m in mentions if m.column and m.column.is_time and m.end <= at + 3]
    times = named or schema.time()
    if not times:
        return None
    col = times[0]
    for m in mentions:
        if m.column is col:
            bound.add(id(m))
    return col, ("year" if col.kind == "temporal" else "")


def _bind(frame, tokens, mentions, schema, i, j, value, bound, *, time_only=False) -> tuple[Column, str] | None:
    """The column a comparison at tokens[i:j] is about: named just before, or just after the number."""
    candidates = []
    for m in mentions:
        gap = tokens[m.end:i]
        if m.end <= i and len(gap) <= 3 and all(t.text in LINK or t.form in UNIT_WORDS for t in gap):
            candidates.append((i - m.end, m))
        k = j
        while k < len(tokens) and (tokens[k].form in UNIT_WORDS or tokens[k].text in UNIT_WORDS
                                   or (k > j and tokens[k].text == "of")) and k < j + 3 \
                and not mention_at(mentions, k):
            k += 1
        if m.start == k:
            candidates.append((m.start - j, m))
    year_like = float(value).is_integer() and 1800 <= value <= 2100
    unit = tokens[j].text if j < len(tokens) else ""
    by_unit = [c for c in schema.numeric() if c.unit and c.unit in (unit, UNIT_NAMES.get(unit))]
    if not candidates and len(by_unit) == 1:
        return by_unit[0], ""
    if candidates:
        m = min(candidates, key=lambda c: c[0])[1]
        cols = m.columns
        if len(cols) > 1:
            numeric = [c for c in cols if c.kind == "numeric"]
            cols = numeric if len(numeric) == 1 else cols
        if len(cols) > 1:
            frame.problems.append(f"Which column do you mean: {names(cols)}?")
            return None
        bound.add(id(m))
        col = cols[0]
        if col.kind == "temporal" and year_like:
            return col, "year"
        if col.kind == "text" and year_like and schema.time():
            return _time_column(schema, mentions, bound, i)  # "deaths by entity since 2000"
        if col.kind == "text":
            frame.problems.append(f"{col.name} is text, so it cannot be compared with the number {_num(value)}.")
            return None
        return col, ""
    if year_like and (time_only or schema.time()):
        found = _time_column(schema, mentions, bound, i)
        if found:
            return found
    numeric = schema.numeric()
    frame.problems.append(f"Which column should be compared with {_num(value)}? Numeric columns: "
                          f"{names(numeric[:8])}.")
    return None


def names(cols: list[Column]) -> str:
    names = [c.name for c in cols]
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else (names[0] if names else "(none)")


def value_filters_read(frame, tokens, values, used) -> None:
    by_col: dict[str, list] = {}
    for v in values:
        negated = v.start > 0 and tokens[v.start - 1].text in NEGATIONS
        if v.start > 1 and tokens[v.start - 1].text == "than" and tokens[v.start - 2].text == "other":
            negated = True
        by_col.setdefault(v.column.name, []).append((v, negated))
        used.update(range(v.start, v.end))
    for items in by_col.values():
        col = items[0][0].column
        start = items[0][0].start
        kept = [v.value for v, neg in items if not neg]
        dropped = [v.value for v, neg in items if neg]
        if kept:
            frame.filters.append(Filter(col, "=" if len(kept) == 1 else "in",
                                        kept[0] if len(kept) == 1 else kept, "", start))
        if dropped:
            frame.filters.append(Filter(col, "!=" if len(dropped) == 1 else "notin",
                                        dropped[0] if len(dropped) == 1 else dropped, "", start))
    atoms = sorted([(v.start, v.column.name) for v in values] +
                   [(f.start, f.column.name) for f in frame.filters if f.op not in ("=", "in", "!=", "notin")
                    or f.part])
    for p, token in enumerate(tokens):
        if token.text != "or":
            continue
        before = [a for a in atoms if a[0] < p]
        after = [a for a in atoms if a[0] > p]
        if before and after and before[-1][1] != after[0][1]:
            frame.join = "OR"
