"""Reading a question into a frame: the columns, values, filters, groups, aggregate and cues it holds."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from analyzer.agent.builtin.schema import Column, Mention, Schema
from analyzer.agent.builtin.vocab import (
    AGGREGATES, COMPARATIVE_MEASURE, COMPARISONS, ENTITY_WORDS, GRAINS, MONTHS, RANK_WORDS, STOPWORDS, SUPERLATIVES,
    UNITS, Token, tokenize,
)
from analyzer.duck import quote_ident as qi
from analyzer.duck import sql_literal

LINK = {"is", "are", "was", "were", "of", "with", "a", "an", "the", "has", "have", "had", "that", "who", "which",
        "be", "been", "being", "their", "its", "value", "whose", "where", "when"}
UNIT_WORDS = UNITS | {"gram", "grams", "kilogram", "pound", "pounds", "degree", "degrees", "millimeter", "mm",
                      "inch", "inches", "meter", "meters", "mile", "miles", "hp", "lb", "unit", "units", "cm",
                      "celsius", "fahrenheit", "dollar", "dollars", "people", "percent"}
UNIT_NAMES = {"grams": "g", "gram": "g", "kilograms": "kg", "pounds": "lbs", "pound": "lbs", "lb": "lbs",
              "millimeters": "mm", "millimetres": "mm", "inches": "in", "degrees": "c", "percent": "%"}
GROUP_WORDS = {"by", "per", "each", "every", "across", "among", "within"}
SKIP_AFTER_GROUP = {"the", "each", "every", "different", "its", "their", "of", "a", "individual", "type", "types",
                    "number", "count", "amount", "level", "kind", "kinds", *AGGREGATES}
NEGATIONS = {"not", "non", "excluding", "except", "without", "besides", "exclude", "other"}
KNOWN = (STOPWORDS | set(AGGREGATES) | set(RANK_WORDS) | set(SUPERLATIVES) | set(GRAINS) | set(MONTHS)
         | ENTITY_WORDS | {w for words, _ in COMPARISONS for w in words} | set(COMPARATIVE_MEASURE) | LINK | {
             "missing", "correlation", "correlated", "relationship", "related", "scatter", "distribution",
             "histogram", "distributed", "spread", "percent", "percentage", "share", "proportion", "fraction",
             "distinct", "unique", "different", "trend", "time", "over", "describe", "summary", "statistics",
             "stats", "bar", "line", "chart", "plot", "graph", "pie", "visualize", "visualise", "draw", "recorded",
             "typical", "typically", "made", "built", "come", "came", "live", "lived", "observed", "got", "gets",
             "kind", "kinds", "type", "types", "caused", "killed", "people", "single", "due", "common", "often",
             "frequent", "frequently", "usual", "usually", "overall", "whole", "year", "day", "week", "month",
             "period", "date", "weekday", "season", "seasonal", "calendar", "happened", "occurred", "measured",
             "there", "them", "they", "than", "same", "now", "only", "just", "instead", "also", "too", "well",
             "again", "split", "broken", "down", "sort", "sorted", "order", "ordered", "rank", "ranked", "top",
             "bottom", "first", "last", "like", "look", "looks", "vary", "varies", "change", "changed", "compare",
             "compared", "versus", "against", "least", "mostly", "per", "through", "since", "ever", "recorded",
             "data", "dataset", "file", "table", "column", "columns", "field", "fields", "not", "non", "except",
             "excluding", "without", "other", "biggest", "smallest", "largest", "highest", "lowest", "much",
             "reach", "reached", "get", "see", "want", "know", "need", "ones", "include", "including", "among",
             "got", "give", "gave", "found", "find", "let", "mean", "means", "tell", "says", "say", "seen", "case",
             "unknown", "null", "nan", "blank", "empty", "value", "values", "record", "records", "entry"})
CUES = [
    ("columns", r"\b(what|which|list( the)?|show( the)?|how many) (columns|fields|variables)\b|\bcolumn names\b"
                r"|\bnumber of columns\b|\bschema\b"),
    ("missing", r"\b(missing|null|nulls|nan|nans|blank|empty|na|unknown)\b|\bnot (recorded|given|known|set)\b"
                r"|\bno \w+ (recorded|given|listed|entered|value)\b"),
    ("correlation", r"\bcorrelat\w*|\brelationship\b|\brelated\b|\brelate\b|\bassociat\w*"),
    ("scatter", r"\bscatter\w*\b|\b(against|versus|vs)\b"),
    ("histogram", r"\bdistribut\w*|\bhistogram\w*|\bspread\b|\bbinned\b"),
    ("share", r"\bpercent\w*|%|\bshare\b|\bproportion\w*|\bfraction\b"),
    ("distinct", r"\b(distinct|unique|different)\b|\b(what|which) \w+( \w+)? (are|is|exist|appear) (there|in|present|found"
                 r"|included|listed|recorded)\b|\b(list|name) (all )?(the )?\w+"
                 r"|\bwhat are the (possible |available )?\w+\b|\bwhich \w+ (are|exist) in\b"),
    ("season", r"\bmonth of (the )?year\b|\bday of (the )?week\b|\bweekdays?\b|\bseason\w*|\b(which|what) (month|weekday)"
               r"|\b(each|every|per|by) calendar month\b|\bday of week\b"),
    ("trend", r"\bover (the )?(time|years|months|days|weeks|period)\b|\btrends?\b|\btime series\b|\bevolv\w*|\bchanged?"
              r" over\b|\b(per|by|each|every|a|for each|in each) (hour|day|date|week|month|quarter|year|decade)\b"
              r"|\b(hourly|daily|weekly|monthly|quarterly|yearly|annual|annually)\b|\bthrough the years\b"),
    ("types", r"^\W*(the )?\w+ (types|kinds|categories)\W*$|\b(types|kinds|categories) of \w+\W*$"),
    ("describe", r"\bdescribe\b|\btell me about\b|\bsummar\w*|\bstatistics\b|\bstats\b|\bprofile\b|\boverview\b"),
]


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


@dataclass
class Frame:
    question: str
    cues: set[str] = field(default_factory=set)
    free: list[Mention] = field(default_factory=list)  # columns named and not used by a filter or a group
    groups: list[Column] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    join: str = "AND"
    agg: str | None = None
    order: str | None = None
    rank_measure: str | None = None  # words of a superlative's measure ("heaviest" -> weight)
    n: int | None = None
    grain: str | None = None
    season: str | None = None  # month | dow
    chart: str | None = None  # bar | line | point | auto
    which: str = ""  # "row": which car/day/penguin…, "group": which species/island
    how_many: bool = False
    problems: list[str] = field(default_factory=list)
    followup: bool = False
    order_by: Column | None = None
    how_many_of: Column | None = None  # "how many species", "how many deaths"
    starts_open: bool = False  # begins like the rest of a sentence: "by island?", "for females"
    unknown: list[str] = field(default_factory=list)  # words that name nothing the analyst knows

    def copy(self) -> Frame:
        return replace(self, cues=set(self.cues), free=list(self.free), groups=list(self.groups),
                       filters=list(self.filters), problems=list(self.problems))


def _text_of(tokens: list[Token]) -> str:
    return " ".join(t.text for t in tokens)


def frame_read(question: str, schema: Schema) -> Frame:
    tokens = tokenize(question)
    text = _text_of(tokens)
    frame = Frame(question=question)
    frame.cues = {name for name, pattern in CUES if re.search(pattern, text)}
    if "trend" in frame.cues:
        # "the average daily max temperature": a grain word before a column name describes it, asks no trend.
        adjectives = re.sub(r"\b(hourly|daily|weekly|monthly|quarterly|yearly|annual)\b(?= \w)", "", text)
        if not re.search(dict(CUES)["trend"], adjectives) and _adjective_grain(tokens, schema):
            frame.cues.discard("trend")
    frame.followup = bool(re.match(r"^(and|what about|how about|now|only|just|same|instead|also|but|as an?|show it|"
                                   r"make it|plot it|chart it|draw it|split|broken down|then|ok|okay)\b", text))
    frame.starts_open = bool(re.match(r"^(by|per|for|in|on|with|without|from|during|since|after|before|among|each|"
                                      r"excluding|except|not|where|when|grouped|bar|line|pie|scatter)\b", text))
    mentions = schema.mentions(tokens)
    in_mention = {i for m in mentions for i in range(m.start, m.end)}
    used: set[int] = set()
    bound: set[int] = set()  # ids of mentions used by filters or groups
    _comparisons(frame, tokens, mentions, schema, used, bound)
    values = schema.value_mentions(tokens, skip=in_mention | used)
    frame.starts_open = frame.starts_open or any(v.start == 0 for v in values)
    _value_filters(frame, tokens, values, used)
    _groups(frame, tokens, mentions, values, used, bound, schema)
    frame.free = [m for m in mentions if id(m) not in bound]
    _words(frame, tokens, used | in_mention, mentions, schema)
    return frame


def _adjective_grain(tokens: list[Token], schema: Schema) -> bool:
    mentions = schema.mentions(tokens)
    starts = {m.start for m in mentions}
    return all(i > 0 and tokens[i - 1].text in AGGREGATES and i + 1 in starts
               for i, t in enumerate(tokens) if t.text in ("hourly", "daily", "weekly", "monthly", "quarterly",
                                                           "yearly", "annual"))


def _mention_at(mentions: list[Mention], start: int) -> Mention | None:
    return next((m for m in mentions if m.start == start), None)


def _comparisons(frame, tokens, mentions, schema, used, bound) -> None:
    patterns = sorted(COMPARISONS, key=lambda p: -len(p[0]))
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
            after = _mention_at(mentions, i + 1)
            if tokens[i].number is not None and i not in used and after is not None and after.column is not None \
                    and after.column.kind == "numeric" and 0 < after.column.distinct <= 20 \
                    and (i == 0 or tokens[i - 1].text not in ("top", "bottom", "first", "last", *RANK_WORDS,
                                                              *SUPERLATIVES)) \
                    and tokens[i].number.is_integer() \
                    and (after.column.profile.get("min") or 0) <= tokens[i].number <= (after.column.profile.get("max") or 0):
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
                    elif not _mention_at(mentions, i + 2):
                        frame.problems.append(f"This file has no date or year column to select {_num(nxt.number)} "
                                              f"by. Columns: {_names(schema.columns[:12])}.")
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
                and not _mention_at(mentions, k):
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
            frame.problems.append(f"Which column do you mean: {_names(cols)}?")
            return None
        bound.add(id(m))
        col = cols[0]
        if col.kind == "temporal" and year_like:
            return col, "year"
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
                          f"{_names(numeric[:8])}.")
    return None


def _names(cols: list[Column]) -> str:
    names = [c.name for c in cols]
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else (names[0] if names else "(none)")


def _value_filters(frame, tokens, values, used) -> None:
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


def _groups(frame, tokens, mentions, values, used, bound, schema) -> None:
    value_starts = {v.start for v in values}
    inside = {i for m in mentions for i in range(m.start, m.end)}
    for i, token in enumerate(tokens):
        if token.text not in GROUP_WORDS or i in used or i in inside:
            continue
        if token.text == "by" and i > 0 and tokens[i - 1].text in ("sorted", "ordered", "ranked", "sort", "order",
                                                                   "rank"):
            k = i + 1
            m = _mention_at(mentions, k) or _mention_at(mentions, k + 1)
            if m and m.column:
                frame.order_by = m.column
                bound.add(id(m))
            continue
        k = i + 1
        while k < len(tokens) and tokens[k].text in SKIP_AFTER_GROUP:
            k += 1
        if k >= len(tokens):
            continue
        nxt = tokens[k]
        if nxt.form in ("column", "field", "variable", "feature", "attribute"):
            continue
        if nxt.text in GRAINS or nxt.form in GRAINS:
            if k + 2 < len(tokens) and tokens[k + 1].text == "of":
                frame.season = "month" if nxt.form == "month" else "dow" if nxt.form == "day" else frame.season
            frame.grain = frame.grain or GRAINS.get(nxt.text) or GRAINS[nxt.form]
            continue
        if nxt.text in ("weekday", "weekdays"):
            frame.season = "dow"
            continue
        m = _mention_at(mentions, k)
        if m is not None:
            if m.column is None:
                text = [c for c in m.columns if c.kind != "numeric"]
                if len(text) == 1:
                    m.columns = text
                else:
                    frame.problems.append(f"Group by which column: {_names(m.columns)}?")
                    bound.add(id(m))
                    continue
            if m.column.kind == "numeric" and not m.column.is_year:
                if token.text in ("each", "every"):
                    continue
                ranked = any(t.text in RANK_WORDS or t.text in SUPERLATIVES for t in tokens)
                if ranked or m.column.distinct > 30:  # "top 3 by price": what to rank by, not a group
                    frame.order_by = m.column
                    bound.add(id(m))
                    continue
            if m.column.is_time and m.column.kind == "temporal" and token.text in ("by", "per", "each", "every"):
                frame.grain = frame.grain or "day"
                frame.cues.add("trend")
                bound.add(id(m))
                continue
            if m.column.is_year:
                frame.cues.add("trend")
                frame.grain = "year"
                bound.add(id(m))
                continue
            if m.column not in frame.groups:
                frame.groups.append(m.column)
            bound.add(id(m))
            # "by species and island"
            after = _mention_at(mentions, m.end + 1)
            if after and after.column and m.end < len(tokens) and tokens[m.end].text == "and" \
                    and after.column.kind == "text":
                frame.groups.append(after.column)
                bound.add(id(after))
        elif token.text in ("by", "per") and k not in value_starts and k not in used and nxt.number is None \
                and i > 0 and tokens[i - 1].text not in ("caused", "made", "built", "killed", "driven", "followed"):
            frame.problems.append(f"I could not find a column called “{nxt.text}” to group by. Columns: "
                                  f"{_names(schema.columns[:12])}.")


def _words(frame, tokens, taken, mentions, schema) -> None:
    text = _text_of(tokens)
    for i, t in enumerate(tokens):
        if i in taken:
            continue
        if t.text in AGGREGATES and not frame.agg:
            frame.agg = AGGREGATES[t.text]
        if t.text in RANK_WORDS and not frame.order and t.text not in AGGREGATES:
            frame.order = RANK_WORDS[t.text]
            if t.text in ("most", "least", "fewest") and i + 1 < len(tokens) and tokens[i + 1].text in SUPERLATIVES:
                continue
        if t.text in SUPERLATIVES:
            frame.rank_measure, direction = SUPERLATIVES[t.text]
            if i > 0 and tokens[i - 1].text == "least":
                direction = "asc" if direction == "desc" else "desc"
            frame.order = direction
        if t.text in ("top", "bottom", "first", "last") and i + 1 < len(tokens) and tokens[i + 1].number:
            frame.n = int(tokens[i + 1].number)
        elif t.number is not None and t.number.is_integer() and 0 < t.number <= 1000 and i + 1 < len(tokens) \
                and (tokens[i + 1].text in RANK_WORDS or tokens[i + 1].text in SUPERLATIVES
                     or (i > 0 and (tokens[i - 1].text in RANK_WORDS or tokens[i - 1].text in SUPERLATIVES))):
            frame.n = int(t.number)
        if t.text in GRAINS and not frame.grain and "trend" in frame.cues:
            frame.grain = GRAINS[t.text]
    if (frame.order or frame.rank_measure) and frame.n is None:
        # "10 cars with the lowest mpg"
        counts = [t.number for i, t in enumerate(tokens) if i not in taken and t.number is not None
                  and t.number.is_integer() and 1 < t.number <= 100]
        if len(counts) == 1:
            frame.n = int(counts[0])
    if re.search(r"\bhow many\b|\bnumber of\b|\bcount\b|\bhow often\b", text):
        frame.how_many = True
        if frame.agg in (None, "count"):
            frame.agg = "count"
    for i, t in enumerate(tokens[:-1]):
        if t.text == "how" and tokens[i + 1].text in ("many", "much"):
            k = i + 2
            while k < len(tokens) and (tokens[k].text in ("different", "distinct", "unique", "kinds", "kind", "types",
                                                          "type", "of", "total") or (k in taken and not
                                                                                    _mention_at(mentions, k))):
                k += 1
            target = _mention_at(mentions, k)
            frame.how_many_of = target.column if target else None
    # Words that name nothing known; the file's own name ("penguins") and a noun after a value ("rainy days",
    # "Adelie penguins") name the rows.
    frame.unknown = [t.text for i, t in enumerate(tokens) if i not in taken and t.text.isalpha() and len(t.text) > 2
                     and t.text not in KNOWN and t.form not in KNOWN and t.form not in schema.nouns
                     and not (i > 0 and i - 1 in taken and i - 1 not in {k for m in mentions
                                                                          for k in range(m.start, m.end)})]
    if re.search(r"\bhow much\b", text) and not frame.agg:
        frame.agg = "sum"
    if re.search(r"\btotal number\b|\bnumber of\b", text) and frame.agg == "sum":
        frame.agg = "count"
    if re.search(r"\bmonth of (the )?year\b|\b(which|what) month\b|\bcalendar month\b|\bseason", text):
        frame.season = "month"
    elif re.search(r"\bday of (the )?week\b|\bweekdays?\b|\b(which|what) day of\b", text):
        frame.season = "dow"
    chart = re.search(r"\b(bar|line|scatter|pie|area|point)s? ?(chart|graph|plot)?\b|\b(chart|plot|graph|visuali[sz]e"
                      r"|draw)\b", text)
    if chart:
        word = chart.group(1) or ""
        frame.chart = {"bar": "bar", "line": "line", "scatter": "point", "point": "point",
                       "area": "line"}.get(word, "auto") if word != "pie" else "bar"
        if word == "bar" and not re.search(r"\bbar (chart|graph|plot)|\bbars\b|\bas a bar\b", text):
            frame.chart = "auto" if re.search(r"\b(chart|plot|graph)\b", text) else None
    which = re.search(r"\b(which|what) (\w+)", text)
    if which or re.search(r"\bthe (\w+ )?(\w+) with the\b", text):
        subject = _mention_at(mentions, next((i for i, t in enumerate(tokens) if t.text in ("which", "what")), -9) + 1)
        if subject and subject.column and subject.column.kind == "text" and not subject.column.is_time:
            frame.which = "group"
        elif subject and subject.column and subject.column.is_time:
            frame.which = "time"
        else:
            frame.which = "row"
