"""Reading POS export files with a branch's effective config: rows, and rejected rows with their reasons.

Pure functions (no database). A row that cannot be read is counted and, for the first few, kept as an
example with its line number and reason — never dropped silently.

The work is done a column at a time, not a row at a time: the file is split once into Arrow
columns (`lines`), text rules that Arrow does exactly as Python (stripping, prefixes, ASCII
upper-casing, lengths) run on whole columns, and every *distinct* text of the other columns
(dates, times, quantities, amounts: POS files repeat them) is converted once by the Python rules
and mapped back by its dictionary index. Only the lines that fail go through Python one by one,
in line order, so the reasons and line numbers are those of a row-by-row reading.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from operator import itemgetter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.parsing.config import AMOUNT_LIMIT, CENT, MAX_LEN, MILLI, PAYMENTS, QUANTITY_LIMIT, SALES
from etl.parsing.lines import Lines, as_mask, decode, split_lines  # noqa: F401  (decode: re-exported)


@dataclass
class Rejected:
    filetype: str
    line: int
    reason: str
    text: str

    def as_dict(self) -> dict:
        return {"filetype": self.filetype, "line": self.line, "reason": self.reason, "text": self.text}


@dataclass
class ParseResult:
    """The kept rows as columns (line numbers first), what was rejected, and why."""

    filetype: str
    columns: list[list] = field(default_factory=list)
    data_lines: int = 0
    rejected: int = 0
    examples: list[Rejected] = field(default_factory=list)

    def reject(self, line: int, reason: str, text: str, keep: int) -> None:
        self.rejected += 1
        if len(self.examples) < keep:
            self.examples.append(Rejected(self.filetype, line, reason, text[:200]))

    @property
    def count(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    @property
    def rows(self) -> list[tuple]:
        """The kept rows as tuples: sales (line_no, tnsc, sale_date, sale_time, item_code, department,
        quantity, amount); payments (line_no, tnsc, payment_method, amount or None)."""
        return list(zip(*self.columns)) if self.columns else []


TOO_LONG = "a field is longer than allowed"


class _Converted:
    """A column converted through a table of its distinct texts (each converted once, in Python, with
    the row-by-row rules; or, with no `convert`, the texts as they are); `failed` maps the table
    positions of texts that cannot be read to the reason."""

    def __init__(self, texts: pa.Array, convert=None, errors=(ValueError,), reason=None, bulk=None):
        encoded = pc.dictionary_encode(texts)
        self.indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        self.failed: dict[int, str] = {}
        self.strings = encoded.dictionary if convert is None else None
        values = encoded.dictionary.to_pylist()
        if convert is not None:
            # `bulk`: the distinct texts it can convert on the whole dictionary at once (Arrow), exactly
            # as `convert` would; the others go through `convert` one by one.
            converted, done = bulk(encoded.dictionary) if bulk else ([None] * len(values), np.zeros(len(values), bool))
            for position in np.flatnonzero(~done).tolist():
                try:
                    converted[position] = convert(values[position])
                except errors:
                    self.failed[position] = reason(values[position])
            values = converted
        self.values = np.empty(len(values), dtype=object)
        self.values[:] = values

    def _where(self, mask: pa.Array, reason: str) -> dict[int, str]:
        return dict.fromkeys(np.flatnonzero(as_mask(mask)).tolist(), reason)

    def where_empty(self, reason: str) -> dict[int, str]:
        """{table position: reason} of the empty values (text columns)."""
        return self._where(pc.equal(self._strings(), ""), reason)

    def where_longer(self, limit: int) -> dict[int, str]:
        return self._where(pc.greater(pc.utf8_length(self._strings()), limit), TOO_LONG)

    def _strings(self) -> pa.Array:
        if self.strings is None:
            self.strings = pa.array(self.values.tolist(), pa.string())
        return self.strings

    def taken(self, keep: np.ndarray | None) -> list:
        indices = self.indices if keep is None else self.indices[keep]
        return self.values[indices].tolist()


# What str.strip() strips: every character Python counts as whitespace.
_WHITESPACE = "".join(c for c in map(chr, range(0x110000)) if c.isspace())


def _stripped(texts: pa.Array) -> pa.Array:
    return pc.utf8_trim(texts, characters=_WHITESPACE)


def _item_codes(texts: pa.Array, cfg: dict) -> _Converted:
    """The item-code cleaning rules, on the whole column at once when it is ASCII (then Arrow's
    upper-casing is Python's); otherwise each distinct code through the Python rules."""
    if len(texts) and not pc.all(pc.string_is_ascii(texts)).as_py():
        return _Converted(texts, _make_item_cleaner(cfg))
    cleaning = cfg["cleaning"]
    code = _stripped(texts)
    cleaned, done = code, None
    for prefix in cleaning.get("strip_item_prefixes") or ():
        hit = pc.starts_with(code, prefix)
        if done is not None:
            hit = pc.and_not(hit, done)
        cleaned = pc.if_else(hit, pc.utf8_ltrim(pc.utf8_slice_codeunits(code, len(prefix)), characters=" -_"), cleaned)
        done = hit if done is None else pc.or_(done, hit)
    if cleaning.get("strip_leading_zeros", False):
        cleaned = pc.utf8_ltrim(cleaned, characters="0")
        cleaned = pc.if_else(pc.equal(cleaned, ""), "0", cleaned)
    if cleaning.get("uppercase_item_code", True):
        cleaned = pc.ascii_upper(cleaned)
    return _Converted(cleaned)


def count_data_rows(raw: bytes, cfg: dict, filetype: str) -> int:
    """Rows that look complete (enough fields, decodable): the measure of a file version."""
    return len(split_lines(raw, cfg, filetype).numbers)


class _Numbers:
    """Text → Decimal with the branch's separators (the rules of one text; the columns call it once per
    distinct text)."""

    def __init__(self, cfg: dict, quantum: Decimal, limit: Decimal):
        self.decimal_comma = cfg["decimal_comma"]
        self.thousands = cfg["thousands_separator"]
        self.quantum, self.limit = quantum, limit

    def __call__(self, raw: str) -> Decimal:
        text = raw.strip().replace(" ", "")
        if self.thousands:
            text = text.replace(self.thousands, "")
        if self.decimal_comma:
            text = text.replace(",", ".")
        if text.startswith("+"):
            text = text[1:]
        value = Decimal(text)
        if not value.is_finite() or abs(value) >= self.limit:
            raise InvalidOperation
        return value.quantize(self.quantum)


def _make_item_cleaner(cfg: dict):
    cleaning = cfg["cleaning"]
    prefixes = tuple(cleaning.get("strip_item_prefixes") or ())
    zeros = cleaning.get("strip_leading_zeros", False)
    upper = cleaning.get("uppercase_item_code", True)

    def clean(raw: str) -> str:
        code = raw.strip()
        for prefix in prefixes:
            if code.startswith(prefix):
                code = code[len(prefix):].lstrip(" -_")
                break
        if zeros:
            code = code.lstrip("0") or "0"
        return code.upper() if upper else code

    return clean


def _time_parser(fmt: str):
    """strptime is slow; the common '%H:%M:%S' goes through the C `time.fromisoformat`."""
    if fmt == "%H:%M:%S":
        def parse(text: str) -> time:
            text = text.strip()
            if len(text) != 8 or text[2] != ":" or text[5] != ":" or not text.replace(":", "").isdigit():
                raise ValueError(text)
            return time.fromisoformat(text)
        return parse
    return lambda text: datetime.strptime(text.strip(), fmt).time()


# The texts `time.fromisoformat` reads for '%H:%M:%S' once stripped, in ASCII digits.
_CLOCK = "^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"


def _clock_times(texts: pa.Array) -> tuple[list, np.ndarray]:
    """'%H:%M:%S' texts → datetime.time on the whole column; the mask of the texts read."""
    clock = _stripped(texts)
    read = pc.match_substring_regex(clock, _CLOCK)
    clock = pc.if_else(read, clock, "00:00:00")

    def part(start: int) -> pa.Array:
        return pc.cast(pc.utf8_slice_codeunits(clock, start, start + 2), pa.int32())

    seconds = pc.add(pc.add(pc.multiply(part(0), 3600), pc.multiply(part(3), 60)), part(6))
    return pc.cast(pc.cast(seconds, pa.int32()), pa.time32("s")).to_pylist(), as_mask(read)


def _date_parser(fmt: str):
    return lambda text: datetime.strptime(text.strip(), fmt).date()


def _kept_rows(lines: Lines, checks: list, result: ParseResult, keep_examples: int) -> np.ndarray | None:
    """Reject the lines whose values fail, first failing check first, in line order (together with the
    lines rejected while splitting); returns the mask of the rows kept (None: all of them).

    `checks` is a list of (column, {table position: reason}) in the order a row-by-row reading tests them.
    """
    failing = [(column.indices, failed) for column, failed in checks if failed]
    problems = list(lines.problems)
    bad = None
    for indices, failed in failing:
        hit = np.isin(indices, np.fromiter(failed, dtype=np.int64, count=len(failed)))
        bad = hit if bad is None else bad | hit
    if bad is not None:
        numbers = lines.numbers
        for row in np.flatnonzero(bad).tolist():
            reason = next(failed[indices[row]] for indices, failed in failing if indices[row] in failed)
            problems.append((int(numbers[row]), reason, lines.line_text(int(numbers[row]))))
    for line_no, reason, text in sorted(problems, key=itemgetter(0)):
        result.reject(line_no, reason, text, keep_examples)
    return None if bad is None else ~bad


def _numbers_of(lines: Lines, keep: np.ndarray | None) -> list[int]:
    numbers = lines.numbers
    return (numbers if keep is None else numbers[keep]).tolist()


def parse_sales(raw: bytes, cfg: dict, *, keep_examples: int = 20) -> ParseResult:
    """rd5000 → columns (line_no, tnsc, sale_date, sale_time, item_code, department, quantity, amount)."""
    result = ParseResult(SALES)
    lines = split_lines(raw, cfg, SALES)
    result.data_lines = lines.data_lines
    cols = cfg["columns"][SALES]
    i_time, i_dept = cols.get("time"), cols.get("department")
    date_fmt, time_fmt = cfg["date_format"], cfg["time_format"]
    numbers = (InvalidOperation, ValueError)

    tnsc = _Converted(_stripped(lines.column(cols["tnsc"])))
    sale_date = _Converted(lines.column(cols["date"]), _date_parser(date_fmt),
                           reason=lambda t: f"bad date {t.strip()[:30]!r} (expected {date_fmt})")
    item = _item_codes(lines.column(cols["item_code"]), cfg)
    quantity = _Converted(lines.column(cols["quantity"]), _Numbers(cfg, MILLI, QUANTITY_LIMIT), numbers,
                          reason=lambda t: f"bad quantity {t.strip()[:30]!r}")
    amount = _Converted(lines.column(cols["amount"]), _Numbers(cfg, CENT, AMOUNT_LIMIT), numbers,
                        reason=lambda t: f"bad amount {t.strip()[:30]!r}")
    checks = [(tnsc, tnsc.where_empty("empty transaction number")), (sale_date, sale_date.failed)]
    sale_time = department = None
    if i_time is not None:
        sale_time = _Converted(lines.column(i_time), _time_parser(time_fmt),
                               reason=lambda t: f"bad time {t.strip()[:30]!r} (expected {time_fmt})",
                               bulk=_clock_times if time_fmt == "%H:%M:%S" else None)
        checks.append((sale_time, sale_time.failed))
    checks += [(item, item.where_empty("empty item code")), (quantity, quantity.failed), (amount, amount.failed),
               (tnsc, tnsc.where_longer(MAX_LEN["tnsc"])), (item, item.where_longer(MAX_LEN["item_code"]))]
    if i_dept is not None:
        department = _Converted(_stripped(lines.column(i_dept)))
        checks.append((department, department.where_longer(MAX_LEN["department"])))
    keep = _kept_rows(lines, checks, result, keep_examples)
    line_numbers = _numbers_of(lines, keep)
    if line_numbers:
        count = len(line_numbers)
        result.columns = [
            line_numbers, tnsc.taken(keep), sale_date.taken(keep),
            sale_time.taken(keep) if sale_time else [None] * count,
            item.taken(keep), department.taken(keep) if department else [""] * count,
            quantity.taken(keep), amount.taken(keep),
        ]
    return result


def parse_payments(raw: bytes, cfg: dict, *, keep_examples: int = 20) -> ParseResult:
    """rd5500 → columns (line_no, tnsc, payment_method, amount or None)."""
    result = ParseResult(PAYMENTS)
    lines = split_lines(raw, cfg, PAYMENTS)
    result.data_lines = lines.data_lines
    cols = cfg["columns"][PAYMENTS]
    i_amount = cols.get("amount")
    mapping = cfg["cleaning"].get("payment_method_map") or {}

    tnsc = _Converted(_stripped(lines.column(cols["tnsc"])))
    methods = _stripped(lines.column(cols["payment_method"]))
    method = _Converted(methods, lambda text: mapping.get(text, text)) if mapping else _Converted(methods)
    empty = "empty transaction number or payment method"
    checks = [(tnsc, tnsc.where_empty(empty)), (method, method.where_empty(empty)),
              (tnsc, tnsc.where_longer(MAX_LEN["tnsc"])), (method, method.where_longer(40))]
    amount = None
    if i_amount is not None:
        amount = _Converted(lines.column(i_amount), _Numbers(cfg, CENT, AMOUNT_LIMIT), (InvalidOperation, ValueError),
                            reason=lambda t: f"bad amount {t.strip()[:30]!r}")
        checks.append((amount, amount.failed))
    keep = _kept_rows(lines, checks, result, keep_examples)
    line_numbers = _numbers_of(lines, keep)
    if line_numbers:
        result.columns = [line_numbers, tnsc.taken(keep), method.taken(keep),
                          amount.taken(keep) if amount else [None] * len(line_numbers)]
    return result


def payment_methods(payments: ParseResult | None) -> dict[str, str]:
    """tnsc → payment method; split payments become 'CARD+CASH'."""
    if payments is None or not payments.columns:
        return {}
    tnsc, method = payments.columns[1], payments.columns[2]
    methods = dict(zip(tnsc, method))  # right for every transaction paid one way (most of them)
    pairs = set(zip(tnsc, method))
    if len(pairs) > len(methods):
        split = {t for t, ways in Counter(map(itemgetter(0), pairs)).items() if ways > 1}
        by_tnsc: dict[str, set[str]] = {}
        for t, m in pairs:
            if t in split:
                by_tnsc.setdefault(t, set()).add(m)
        methods.update({t: "+".join(sorted(ways))[:100] for t, ways in by_tnsc.items()})
    return methods


def combine(sales: ParseResult, payments: ParseResult | None) -> list[tuple]:
    """One record per sales line with its payment method: (…sales fields, payment_method)."""
    if not sales.columns:
        return []
    methods = payment_methods(payments)
    paid = list(map(methods.get, sales.columns[1], [""] * sales.count))
    return list(zip(*sales.columns, paid))
