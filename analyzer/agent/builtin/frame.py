"""Reading a question into a frame: the columns, values, filters, groups, aggregate and cues it holds."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from analyzer.agent.builtin.filters import (
    LINK, Filter, comparisons_read, mention_at, names, value_filters_read,
)
from analyzer.agent.builtin.schema import Column, Mention, Schema
from analyzer.agent.builtin.vocab import (
    AGGREGATES, COMPARATIVE_MEASURE, COMPARATIVE_RANK, COMPARISONS, ENTITY_WORDS, GRAINS, MONTHS, RANK_WORDS,
    STOPWORDS, SUPERLATIVES,
    Token, tokenize,
)

GROUP_WORDS = {"by", "per", "each", "every", "across", "among", "within"}
SKIP_AFTER_GROUP = {"the", "each", "every", "different", "its", "their", "of", "a", "individual", "type", "types",
                    "number", "count", "amount", "level", "kind", "kinds", *AGGREGATES}
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
    ("distinct", r"\b(distinct|unique|different)\b|\b(what|which) \w+( \w+)? (are|is|exist|appear) "
                 r"(there|in|present|found|included|listed|recorded)\b|\b(list|name) (all )?(the )?\w+"
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
    subject: Column | None = None  # a few-valued number asked "which" about: the group
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
    mentions = schema.mentions(tokens)
    frame.cues = {name for name, pattern in CUES if re.search(pattern, text)}
    if "trend" in frame.cues:
        # "the average daily max temperature": a grain word before a column name describes it, asks no trend.
        adjectives = re.sub(r"\b(hourly|daily|weekly|monthly|quarterly|yearly|annual)\b(?= \w)", "", text)
        if not re.search(dict(CUES)["trend"], adjectives) and _adjective_grain(tokens, mentions):
            frame.cues.discard("trend")
    frame.followup = bool(re.match(r"^(and|what about|how about|now|only|just|same|instead|also|but|as an?|show it|"
                                   r"make it|plot it|chart it|draw it|split|broken down|then|ok|okay)\b", text))
    frame.starts_open = bool(re.match(r"^(by|per|for|in|on|with|without|from|during|since|after|before|among|each|"
                                      r"excluding|except|not|where|when|grouped|bar|line|pie|scatter)\b", text))
    # A value of several words ("All natural disasters") wins over a column named by one of its words.
    long_values = [v for v in schema.value_mentions(tokens, skip=set()) if v.end - v.start > 1]
    mentions = [m for m in mentions if not any(v.start < m.end and m.start < v.end for v in long_values)]
    in_mention = {i for m in mentions for i in range(m.start, m.end)}
    used: set[int] = set()
    bound: set[int] = set()  # ids of mentions used by filters or groups
    comparisons_read(frame, tokens, mentions, schema, used, bound)
    values = schema.value_mentions(tokens, skip=in_mention | used)
    frame.starts_open = frame.starts_open or any(v.start == 0 for v in values)
    value_filters_read(frame, tokens, values, used)
    if re.search(r"\b(vs|versus|compared to|compared with|against)\b", text):
        # "male vs female": the values side by side
        frame.groups += [f.column for f in frame.filters if f.op == "in" and f.column not in frame.groups]
    _groups(frame, tokens, mentions, values, used, bound, schema)
    frame.free = [m for m in mentions if id(m) not in bound]
    _words(frame, tokens, used | in_mention, mentions, schema)
    return frame


def _adjective_grain(tokens: list[Token], mentions: list[Mention]) -> bool:
    starts = {m.start for m in mentions}
    return all(i > 0 and tokens[i - 1].text in AGGREGATES and i + 1 in starts
               for i, t in enumerate(tokens) if t.text in ("hourly", "daily", "weekly", "monthly", "quarterly",
                                                           "yearly", "annual"))


def _groups(frame, tokens, mentions, values, used, bound, schema) -> None:
    value_starts = {v.start for v in values}
    inside = {i for m in mentions for i in range(m.start, m.end)}
    for i, token in enumerate(tokens):
        if token.text not in GROUP_WORDS or i in used or i in inside:
            continue
        if token.text == "by" and i > 0 and tokens[i - 1].text in ("sorted", "ordered", "ranked", "sort", "order",
                                                                   "rank"):
            k = i + 1
            m = mention_at(mentions, k) or mention_at(mentions, k + 1)
            if m and m.column:
                frame.order_by = m.column
                bound.add(id(m))
            continue
        k = i + 1
        while k < len(tokens) and (tokens[k].text in SKIP_AFTER_GROUP or tokens[k].form in schema.nouns) \
                and not mention_at(mentions, k):
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
        m = mention_at(mentions, k)
        if m is not None:
            if m.column is None:
                text = [c for c in m.columns if c.kind != "numeric"]
                if len(text) == 1:
                    m.columns = text
                else:
                    frame.problems.append(f"Group by which column: {names(m.columns)}?")
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
            after = mention_at(mentions, m.end + 1)
            if after and after.column and m.end < len(tokens) and tokens[m.end].text == "and" \
                    and after.column.kind == "text":
                frame.groups.append(after.column)
                bound.add(id(after))
        elif token.text in ("by", "per") and k not in value_starts and k not in used and nxt.number is None \
                and i > 0 and tokens[i - 1].text not in ("caused", "made", "built", "killed", "driven", "followed"):
            frame.problems.append(f"I could not find a column called “{nxt.text}” to group by. Columns: "
                                  f"{names(schema.columns[:12])}.")


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
        if t.text in COMPARATIVE_RANK and not (i + 1 < len(tokens) and tokens[i + 1].text == "than"):
            words, direction = COMPARATIVE_RANK[t.text]
            frame.rank_measure = frame.rank_measure or words
            frame.order = frame.order or direction
        if (t.text in SUPERLATIVES or t.text in RANK_WORDS) and not frame.which:
            after = mention_at(mentions, i + 1)
            if after is not None and after.column is not None and after.column.kind == "text" \
                    and after.column.distinct <= 50:
                frame.which = "group"  # "the heaviest species on average"
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
        if (t.text == "how" and tokens[i + 1].text in ("many", "much")) or (
                t.text == "number" and tokens[i + 1].text == "of" and frame.how_many_of is None):
            k = i + 2
            while k < len(tokens) and (tokens[k].text in ("different", "distinct", "unique", "kinds", "kind", "types",
                                                          "type", "of", "total") or (k in taken and not
                                                                                    mention_at(mentions, k))):
                k += 1
            if k < len(tokens) and tokens[k].text in ("people", "persons", "lives", "victims"):
                k += 2 if k + 1 < len(tokens) and tokens[k + 1].text in ("were", "have", "had") else 1
            target = mention_at(mentions, k)
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
    if frame.order or frame.rank_measure:
        # "the warmest month", "which year had the most deaths": periods ranked
        grain = next((GRAINS[t.text] for i, t in enumerate(tokens) if t.text in ("day", "week", "month", "year",
                                                                                 "quarter", "decade")
                      and i not in taken), None)
        if grain == "month" and not frame.season:
            frame.season = "month"
        elif grain and not frame.season:
            frame.grain = frame.grain or grain
            frame.which = "time"
    which = re.search(r"\b(which|what) (\w+)", text)
    if frame.which == "time":
        pass
    elif which or re.search(r"\bthe (\w+ )?(\w+) with the\b", text):
        subject = mention_at(mentions, next((i for i, t in enumerate(tokens) if t.text in ("which", "what")), -9) + 1)
        if subject and subject.column and subject.column.kind == "text" and not subject.column.is_time:
            frame.which = "group"
        elif subject and subject.column and subject.column.kind == "numeric" and not subject.column.is_year \
                and 0 < subject.column.distinct <= 30:
            frame.which, frame.subject = "group", subject.column  # "which cylinder count has the best mpg"
            frame.free = [m for m in frame.free if m is not subject]
        elif subject and subject.column and subject.column.is_time:
            frame.which = "time"
        else:
            frame.which = "row"
