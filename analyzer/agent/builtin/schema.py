"""Which columns and values a question names: normalized column names, synonyms, and the profile's values."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from analyzer.agent.builtin.vocab import (
    AGGREGATES, PHRASES, RANK_WORDS, STOPWORDS, SYNONYMS, UNITS, Token, singular, split_name, tokenize,
)
from analyzer.ingest import is_numeric, is_temporal

# Parts of a column name that never name the column alone ("max" of temp_max is an aggregate word).
NOT_ALONE = set(AGGREGATES) | set(RANK_WORDS) | STOPWORDS | {"high", "low", "per", "gallon", "mile", "in", "of"}


@dataclass
class Column:
    name: str
    type: str
    kind: str  # numeric | temporal | text
    words: tuple[str, ...]
    profile: dict = field(default_factory=dict)
    values: list = field(default_factory=list)

    @property
    def is_year(self) -> bool:
        """An integer column of calendar years (`Year`, `model_year`): time, counted in whole years."""
        if self.kind != "numeric" or not ({"year", "yr"} & set(self.words)):
            return False
        lo, hi = self.profile.get("min"), self.profile.get("max")
        integral = "INT" in self.type.upper() or (isinstance(lo, (int, float)) and float(lo).is_integer())
        return integral and isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and 1000 <= lo <= hi <= 3000

    @property
    def is_time(self) -> bool:
        return (self.kind == "temporal" and self.type.upper() not in ("TIME",)) or self.is_year

    @property
    def distinct(self) -> int:
        return int(self.profile.get("distinct") or 0)

    @property
    def unit(self) -> str:
        """The unit written in the name: "Body Mass (g)" -> g, "Weight_in_lbs" -> lbs."""
        bracket = re.search(r"[\(\[]\s*([A-Za-z%°/]+)\s*[\)\]]", self.name)
        if bracket:
            return bracket.group(1).lower()
        tail = re.search(r"[_ ](?:in[_ ])?([A-Za-z]+)$", self.name)
        return tail.group(1).lower() if tail and tail.group(1).lower() in UNITS else ""

    def label(self) -> str:
        return "_".join(self.words) or "value"


@dataclass
class Mention:
    start: int  # token indexes, end exclusive
    end: int
    columns: list[Column]
    exact: bool = True  # the whole name (or a known phrase for it), not one word of it

    @property
    def column(self) -> Column | None:
        return self.columns[0] if len(self.columns) == 1 else None


@dataclass
class ValueMention:
    start: int
    end: int
    column: Column
    value: object


def _column_kind(type_name: str) -> str:
    if is_numeric(type_name):
        return "numeric"
    if is_temporal(type_name):
        return "temporal"
    return "text"


def _matches(word: str, token: Token) -> bool:
    if token.form == word or token.text == word or token.form in SYNONYMS.get(word, ()):
        return True
    text = token.text  # "windy" -> wind, "sunny" -> sun
    return len(text) > 4 and text.endswith("y") and (text[:-1] == word or (text[-2] == text[-3]
                                                                           and text[:-2] == word))


class Schema:
    """The columns of one file, with what is needed to find them in a question."""

    def __init__(self, columns: list[dict], profile: list[dict], *, row_count: int = 0, filename: str = ""):
        by_name = {p["name"]: p for p in profile}
        self.row_count = row_count
        self._entries: list | None = None
        # What the rows are called: the words of the file's name ("penguins.csv" -> penguin).
        self.nouns = {t.form for t in tokenize(re.sub(r"\.\w+$", "", filename.replace("_", " ")))}
        self.columns: list[Column] = []
        for col in columns:
            prof = by_name.get(col["name"], {})
            words = tuple(singular(w) for w in split_name(col["name"])) or (col["name"].lower(),)
            values = prof.get("values") or prof.get("top_values") or []
            self.columns.append(Column(col["name"], col["type"], _column_kind(col["type"]), words, prof,
                                       [v for v in values if isinstance(v, str) and v.strip()]))

    # --- kinds -----------------------------------------------------------------------------
    def numeric(self) -> list[Column]:
        return [c for c in self.columns if c.kind == "numeric" and not c.is_year]

    def time(self) -> list[Column]:
        return [c for c in self.columns if c.is_time]

    def text(self) -> list[Column]:
        return [c for c in self.columns if c.kind == "text"]

    def by_name(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def id_like(self, col: Column) -> bool:
        """Row ids and sample numbers: nothing to chart."""
        words = set(col.words)
        named = bool(words & {"id", "uuid", "guid", "key", "index", "idx"}) or col.name.lower() in ("no", "nr", "#")
        named = named or (bool(words & {"sample", "row", "record"}) and bool(words & {"number", "num", "no", "nr"}))
        unique = self.row_count and col.distinct >= 0.95 * self.row_count
        if col.kind == "numeric":
            return named or (unique and "INT" in col.type.upper() and col.profile.get("min") in (0, 1)
                             and col.profile.get("max") in (self.row_count - 1, self.row_count))
        return named and bool(unique) or (col.kind == "text" and bool(unique) and col.distinct > 50
                                          and not (words & {"name", "title", "description"}))

    # --- finding names in a question ----------------------------------------------------------
    def _variants(self, col: Column) -> list[tuple[tuple[str, ...], bool]]:
        variants = [(col.words, True)]
        full = tuple(singular(w) for w in split_name(col.name.replace("(", " ").replace(")", " ")))
        if full != col.words:
            variants.append((full, True))
        if len(col.words) == 2:
            variants.append((col.words[::-1], True))
        for phrase, target in PHRASES.items():
            if target == col.words:
                variants.append((phrase, True))
        return variants

    def mentions(self, tokens: list[Token]) -> list[Mention]:
        spans: list[tuple[int, int, int, Column, bool]] = []  # start, end, score, column, exact
        for col in self.columns:
            for words, _ in self._variants(col):
                n = len(words)
                for i in range(len(tokens) - n + 1):
                    if all(_matches(w, tokens[i + k]) for k, w in enumerate(words)):
                        literal = all(tokens[i + k].form == w for k, w in enumerate(words))
                        spans.append((i, i + n, 2 * n + literal, col, True))
            if len(col.words) > 1:
                for i, token in enumerate(tokens):
                    if token.form in NOT_ALONE or token.text in NOT_ALONE:
                        continue
                    if any(_matches(w, token) for w in col.words if w not in NOT_ALONE):
                        spans.append((i, i + 1, 1, col, False))
        # Longest, best-scored spans first; equal spans of several columns make one ambiguous mention.
        spans.sort(key=lambda s: (-(s[1] - s[0]), -s[2], s[0]))
        taken: set[int] = set()
        chosen: dict[tuple[int, int], Mention] = {}
        best: dict[tuple[int, int], int] = {}
        for start, end, score, col, exact in spans:
            key = (start, end)
            if key in chosen:
                if score == best[key] and col not in chosen[key].columns:
                    chosen[key].columns.append(col)
                continue
            if taken & set(range(start, end)):
                continue
            taken.update(range(start, end))
            chosen[key] = Mention(start, end, [col], exact and score > 1)
            best[key] = score
        found = sorted(chosen.values(), key=lambda m: m.start)
        return self._merge_adjacent(found)

    @staticmethod
    def _merge_adjacent(found: list[Mention]) -> list[Mention]:
        """"length of the flipper": an ambiguous word next to a word that settles it is one mention."""
        out: list[Mention] = []
        for mention in found:
            prev = out[-1] if out else None
            if prev and mention.start - prev.end <= 2 and (len(prev.columns) > 1 or len(mention.columns) > 1):
                common = [c for c in prev.columns if c in mention.columns]
                if len(common) == 1:
                    out[-1] = Mention(prev.start, mention.end, common, True)
                    continue
            out.append(mention)
        return out

    def value_mentions(self, tokens: list[Token], skip: set[int]) -> list[ValueMention]:
        found: list[ValueMention] = []
        taken = set(skip)
        for words, col, value in self._value_entries():
            n = len(words)
            for i in range(len(tokens) - n + 1):
                if taken & set(range(i, i + n)):
                    continue
                if all(_value_word(w, tokens[i + k]) for k, w in enumerate(words)):
                    found.append(ValueMention(i, i + n, col, value))
                    taken.update(range(i, i + n))
        return sorted(found, key=lambda v: v.start)

    def _value_entries(self) -> list[tuple[tuple[str, ...], Column, str]]:
        """Every category value as the words it is written with, the longest first (read once)."""
        if self._entries is not None:
            return self._entries
        entries = []
        for col in self.text():
            for value in col.values:
                words = tuple(singular(t.text) for t in tokenize(value))
                if words and not (len(words) == 1 and (words[0] in STOPWORDS or len(words[0]) < 2)):
                    entries.append((words, col, value))
        self._entries = sorted(entries, key=lambda e: -len(e[0]))
        return self._entries

    def find(self, words: str, kind: str | None = None) -> list[Column]:
        """Columns whose name holds these words (through synonyms): the measure of "heaviest", "hottest"."""
        wanted = words.split()
        hits = []
        for col in self.columns:
            if kind and col.kind != kind:
                continue
            if all(any(_matches(w, Token(cw, cw, 0, 0)) or _matches(cw, Token(w, w, 0, 0)) for cw in col.words)
                   for w in wanted[:1]):
                hits.append(col)
        if len(hits) > 1 and len(wanted) > 1:
            narrowed = [c for c in hits if any(_matches(cw, Token(wanted[1], wanted[1], 0, 0)) for cw in c.words)]
            hits = narrowed or hits
        return hits


DEMONYMS = {"american": "usa", "america": "usa", "us": "usa", "british": "uk", "english": "england",
            "french": "france", "german": "germany", "italian": "italy", "spanish": "spain", "chinese": "china",
            "japanese": "japan", "european": "europe", "asian": "asia", "african": "africa"}


def _value_word(word: str, token: Token) -> bool:
    text = token.text
    if token.form == word or text == word or DEMONYMS.get(text) == word:
        return True
    if len(word) >= 3 and (text in (word + "ed", word + "ing", word + word[-1] + "ed", word + word[-1] + "ing")):
        return True  # snowed, raining
    if len(word) >= 4 and text.startswith(word) and len(text) <= len(word) + 4 and text[len(word):] in (
            "ese", "ean", "an", "n", "ian", "ish", "ic"):
        return True
    if text.endswith("y") and len(text) > 3:  # rainy -> rain, sunny -> sun, foggy -> fog
        stem = text[:-1]
        if stem == word or (len(stem) > 2 and stem[-1] == stem[-2] and stem[:-1] == word):
            return True
    return False
