"""The words the built-in analyst understands: tokens, singular forms, synonyms, aggregates, comparisons."""

from __future__ import annotations

import re
from dataclasses import dataclass

TOKEN_RE = re.compile(r"\d{4}-\d{2}-\d{2}|-?\d+(?:[.,]\d+)*(?:\.\d+)?|[a-z]+|[<>]=?|=|%")


@dataclass(frozen=True)
class Token:
    text: str  # as typed, lower case
    form: str  # the singular form, used for matching
    start: int
    end: int

    @property
    def number(self) -> float | None:
        return parse_number(self.text)

    @property
    def date(self) -> str | None:
        return self.text if re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.text) else None


def parse_number(text: str) -> float | None:
    if not re.fullmatch(r"-?\d+(?:,\d{3})*(?:\.\d+)?", text):
        return None
    return float(text.replace(",", ""))


def singular(word: str) -> str:
    if len(word) <= 3 or not word.isalpha():
        return word
    if word in IRREGULAR:
        return IRREGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


IRREGULAR = {"species": "species", "series": "series", "people": "person", "men": "man", "women": "woman",
             "children": "child", "data": "data", "indices": "index", "statuses": "status", "gas": "gas"}


def tokenize(text: str) -> list[Token]:
    lower = text.lower()
    return [Token(m.group(), singular(m.group()), m.start(), m.end()) for m in TOKEN_RE.finditer(lower)]


def split_name(name: str) -> list[str]:
    """Words of a column name: snake/camel/kebab case split, brackets (units) and unit suffixes dropped."""
    text = re.sub(r"[\(\[\{].*?[\)\]\}]", " ", name)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", text)
    words = [w for w in re.split(r"[^A-Za-z0-9]+", text.lower()) if w]
    while len(words) > 1 and words[-1] in UNITS:
        words.pop()
        if len(words) > 1 and words[-1] in ("in", "of"):
            words.pop()
    return words


UNITS = {"g", "kg", "mg", "lb", "lbs", "oz", "mm", "cm", "m", "km", "mi", "ft", "in", "usd", "eur", "gbp",
         "pct", "percent", "sec", "secs", "s", "ms", "min", "mins", "h", "hr", "hrs", "c", "f", "mph", "kmh",
         "degc", "degf", "kwh", "mwh", "l", "ml"} - {"min"}

# Words that mean the same thing inside column names and questions (matched on singular forms).
SYNONYM_GROUPS = [
    {"temp", "temperature"}, {"max", "maximum", "high", "highest"}, {"min", "minimum", "low", "lowest"},
    {"weight", "mass", "weigh", "weighs", "weighing", "weighed"}, {"hp", "horsepower", "power"},
    {"precipitation", "precip", "rainfall"}, {"qty", "quantity"}, {"amt", "amount"}, {"avg", "average"},
    {"pct", "percent", "percentage"}, {"len", "length", "long"}, {"dept", "department"}, {"cyl", "cylinder"},
    {"accel", "acceleration"}, {"displacement", "disp"},
    {"death", "fatality", "killed", "dead", "died", "die", "kill", "casualty"},
    {"yr", "year"}, {"beak", "bill", "culmen"}, {"sex", "gender"}, {"country", "nation"},
    {"price", "cost"}, {"revenue", "sale", "turnover"}, {"qtr", "quarter"}, {"num", "number"},
    {"desc", "description"}, {"cat", "category"}, {"region", "area"}, {"vol", "volume"},
    {"entity", "disaster"}, {"origin", "region"},
]
SYNONYMS: dict[str, set[str]] = {}
for _group in SYNONYM_GROUPS:
    for _word in _group:
        SYNONYMS.setdefault(_word, set()).update(_group)

# Whole-phrase names a person uses for common columns: phrase -> words of the column name.
PHRASES = {
    ("mpg",): ("mile", "per", "gallon"),
    ("fuel", "economy"): ("mile", "per", "gallon"),
    ("fuel", "efficiency"): ("mile", "per", "gallon"),
    ("engine", "size"): ("displacement",),
    ("wind", "speed"): ("wind",),
    ("model", "year"): ("year",),
    ("weather", "type"): ("weather",),
    ("kind", "of", "weather"): ("weather",),
}

AGGREGATES = {
    "average": "avg", "avg": "avg", "mean": "avg", "typical": "avg", "median": "median",
    "sum": "sum", "total": "sum", "combined": "sum", "overall": "sum",
    "maximum": "max", "max": "max", "minimum": "min", "min": "min",
    "count": "count", "std": "stddev", "stdev": "stddev", "deviation": "stddev", "variance": "var",
}
AGG_LABEL = {"avg": "average", "median": "median", "sum": "total", "max": "maximum", "min": "minimum",
             "count": "number of rows", "stddev": "standard deviation", "var": "variance"}
AGG_SQL = {"avg": "avg", "median": "median", "sum": "sum", "max": "max", "min": "min",
           "stddev": "stddev_samp", "var": "var_samp"}

# Words that rank: direction of the order.
RANK_WORDS = {
    "top": "desc", "highest": "desc", "largest": "desc", "biggest": "desc", "most": "desc", "greatest": "desc",
    "best": "desc", "maximum": "desc", "max": "desc", "higher": "desc",
    "bottom": "asc", "lowest": "asc", "smallest": "asc", "least": "asc", "fewest": "asc", "worst": "asc",
    "minimum": "asc", "min": "asc", "lower": "asc",
}
# Superlatives that name their measure: word -> (words to find the column, direction).
SUPERLATIVES = {
    "heaviest": ("weight", "desc"), "lightest": ("weight", "asc"),
    "hottest": ("temperature max", "desc"), "warmest": ("temperature max", "desc"),
    "coldest": ("temperature min", "asc"), "coolest": ("temperature min", "asc"),
    "wettest": ("precipitation", "desc"), "rainiest": ("precipitation", "desc"),
    "driest": ("precipitation", "asc"), "windiest": ("wind", "desc"), "calmest": ("wind", "asc"),
    "deadliest": ("death", "desc"), "longest": ("length", "desc"), "shortest": ("length", "asc"),
    "strongest": ("horsepower", "desc"), "weakest": ("horsepower", "asc"),
    "priciest": ("price", "desc"), "cheapest": ("price", "asc"), "oldest": ("@time", "asc"),
    "newest": ("@time", "desc"), "latest": ("@time", "desc"), "earliest": ("@time", "asc"),
    "efficient": ("mile per gallon", "desc"), "powerful": ("horsepower", "desc"),
    "populous": ("population", "desc"), "expensive": ("price", "desc"), "profitable": ("profit", "desc"),
}
# Measures that are added up rather than averaged when no aggregate is named.
ADDITIVE = {"death", "count", "qty", "quantity", "amount", "sale", "revenue", "volume", "total", "sum", "case",
            "unit", "profit", "cost", "spend", "precipitation", "rainfall", "population", "sold", "order", "visit"}

COMPARISONS = [
    (("greater", "than", "or", "equal", "to"), ">="), (("more", "than", "or", "equal", "to"), ">="),
    (("less", "than", "or", "equal", "to"), "<="), (("at", "least"), ">="), (("at", "most"), "<="),
    (("no", "less", "than"), ">="), (("no", "more", "than"), "<="), (("not", "more", "than"), "<="),
    (("more", "than"), ">"), (("greater", "than"), ">"), (("higher", "than"), ">"), (("larger", "than"), ">"),
    (("bigger", "than"), ">"), (("heavier", "than"), ">"), (("longer", "than"), ">"), (("later", "than"), ">"),
    (("less", "than"), "<"), (("fewer", "than"), "<"), (("lower", "than"), "<"), (("smaller", "than"), "<"),
    (("lighter", "than"), "<"), (("shorter", "than"), "<"), (("earlier", "than"), "<"),
    (("equal", "to"), "="), (("exactly",), "="), (("equal",), "="), (("equals",), "="),
    (("over",), ">"), (("above",), ">"), (("exceeding",), ">"), (("exceed",), ">"), (("exceeds",), ">"),
    (("under",), "<"), (("below",), "<"), ((">=",), ">="), (("<=",), "<="), ((">",), ">"), (("<",), "<"),
    (("=",), "="), (("after",), ">"), (("since",), ">="), (("before",), "<"), (("until",), "<="),
]
# Comparative words that carry their own measure ("heavier than 4000").
COMPARATIVE_MEASURE = {"heavier": "weight", "lighter": "weight", "longer": "length", "shorter": "length"}
# Comparatives without "than" rank ("which sex is heavier"): word -> (words of the measure or None, direction).
COMPARATIVE_RANK = {"heavier": ("weight", "desc"), "lighter": ("weight", "asc"), "longer": ("length", "desc"),
                    "shorter": ("length", "asc"), "hotter": ("temperature max", "desc"),
                    "warmer": ("temperature max", "desc"), "colder": ("temperature min", "asc"),
                    "wetter": ("precipitation", "desc"), "windier": ("wind", "desc"), "deadlier": ("death", "desc"),
                    "bigger": (None, "desc"), "larger": (None, "desc"), "higher": (None, "desc"),
                    "smaller": (None, "asc"), "lower": (None, "asc")}

GRAINS = {"hour": "hour", "hourly": "hour", "day": "day", "daily": "day", "week": "week", "weekly": "week",
          "month": "month", "monthly": "month", "quarter": "quarter", "quarterly": "quarter", "year": "year",
          "yearly": "year", "annual": "year", "annually": "year", "decade": "decade"}
MONTHS = {m: i + 1 for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july",
                                           "august", "september", "october", "november", "december"])}
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items()) if m != "may"})
MONTHS.pop("mar", None)  # "mar" is rarely the month in a question

# Words that say nothing about the data: skipped when looking for what a question names.
STOPWORDS = set("""a an the of in on at to for from with without by per and or is are was were be been being
do does did has have had what which who whom whose how many much there their it its this that these those
me my i we our you your show tell give list find get display plot chart graph draw compute calculate
please can could would will should value values data dataset table file rows row record records entry
entries observation observations sample samples item items one each every all any some as than then
versus vs against between into across among over under about also just only whole number
""".split())
ENTITY_WORDS = {"row", "record", "entry", "observation", "sample", "item", "case", "line", "thing", "one",
                "instance", "example"}
