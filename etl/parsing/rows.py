"""Reading POS export files with a branch's effective config: rows, and rejected rows with their reasons.

Pure functions (no database). A row that cannot be read is counted and, for the first few, kept as an
example with its line number and reason — never dropped silently.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

from etl.parsing.config import AMOUNT_LIMIT, CENT, MAX_LEN, MILLI, PAYMENTS, QUANTITY_LIMIT, SALES


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
    filetype: str
    rows: list = field(default_factory=list)
    data_lines: int = 0
    rejected: int = 0
    examples: list[Rejected] = field(default_factory=list)

    def reject(self, line: int, reason: str, text: str, keep: int) -> None:
        self.rejected += 1
        if len(self.examples) < keep:
            self.examples.append(Rejected(self.filetype, line, reason, text[:200]))


def decode(raw: bytes, cfg: dict) -> str:
    text = raw.decode(cfg["encoding"], errors="replace")
    return text[1:] if text.startswith("\ufeff") else text


def _splitter(delimiter: str):
    def split(line: str) -> list[str]:
        if '"' in line:
            try:
                return next(csv.reader([line], delimiter=delimiter))
            except (csv.Error, StopIteration):
                return line.split(delimiter)
        return line.split(delimiter)

    return split


def _numbered_lines(raw: bytes, cfg: dict) -> tuple[list[str], int, bool]:
    """All lines, the index of the first data line, whether any line may hold undecodable bytes."""
    text = decode(raw, cfg)
    return text.splitlines(), cfg["skip_header_rows"], ("\ufffd" in text or "\x00" in text)


def _needed_fields(cfg: dict, filetype: str) -> int:
    return max(i for i in cfg["columns"][filetype].values() if i is not None) + 1


def count_data_rows(raw: bytes, cfg: dict, filetype: str) -> int:
    """Rows that look complete (enough fields, decodable): the measure of a file version."""
    needed = _needed_fields(cfg, filetype)
    split = _splitter(cfg["delimiter"])
    lines, first, check_bytes = _numbered_lines(raw, cfg)
    count = 0
    for line in lines[first:]:
        if not line or line.isspace() or (check_bytes and ("\ufffd" in line or "\x00" in line)):
            continue
        if len(split(line)) >= needed:
            count += 1
    return count


class _Numbers:
    """Text → Decimal with the branch's separators; memoised (POS files repeat prices and quantities)."""

    def __init__(self, cfg: dict, quantum: Decimal, limit: Decimal):
        self.decimal_comma = cfg["decimal_comma"]
        self.thousands = cfg["thousands_separator"]
        self.quantum, self.limit = quantum, limit
        self.cache: dict[str, Decimal] = {}

    def __call__(self, raw: str) -> Decimal:
        value = self.cache.get(raw)
        if value is None:
            value = self._parse(raw)
            if len(self.cache) < 200_000:
                self.cache[raw] = value
        return value

    def _parse(self, raw: str) -> Decimal:
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
    cache: dict[str, str] = {}

    def clean(raw: str) -> str:
        code = cache.get(raw)
        if code is not None:
            return code
        code = raw.strip()
        for prefix in prefixes:
            if code.startswith(prefix):
                code = code[len(prefix):].lstrip(" -_")
                break
        if zeros:
            code = code.lstrip("0") or "0"
        code = code.upper() if upper else code
        if len(cache) < 200_000:
            cache[raw] = code
        return code

    clean.cache = cache
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


def _data_lines(raw: bytes, cfg: dict, result: ParseResult, keep_examples: int):
    """The shape both file types share: (line number, line, fields) of every data line with enough fields.

    Header rows and blank lines are skipped; undecodable lines and lines with too few fields are
    rejected into `result` here; `result.data_lines` counts every non-blank data line.
    """
    needed = _needed_fields(cfg, result.filetype)
    delimiter = cfg["delimiter"]
    split = _splitter(delimiter)
    reject = result.reject
    lines, first, check_bytes = _numbered_lines(raw, cfg)
    data_lines = 0
    try:
        for index in range(first, len(lines)):
            line = lines[index]
            if not line or line.isspace():
                continue
            data_lines += 1
            line_no = index + 1
            if check_bytes and ("\ufffd" in line or "\x00" in line):
                reject(line_no, "undecodable bytes", line, keep_examples)
                continue
            parts = line.split(delimiter) if '"' not in line else split(line)
            if len(parts) < needed:
                reject(line_no, f"expected at least {needed} fields, got {len(parts)}", line, keep_examples)
                continue
            yield line_no, line, parts
    finally:
        result.data_lines = data_lines


def parse_sales(raw: bytes, cfg: dict, *, keep_examples: int = 20) -> ParseResult:
    """rd5000 rows → (line_no, tnsc, sale_date, sale_time, item_code, department, quantity, amount)."""
    result = ParseResult(SALES)
    cols = cfg["columns"][SALES]
    i_tnsc, i_date, i_item, i_qty, i_amount = (cols[k] for k in ("tnsc", "date", "item_code", "quantity", "amount"))
    i_time, i_dept = cols.get("time"), cols.get("department")
    quantity_of = _Numbers(cfg, MILLI, QUANTITY_LIMIT)
    amount_of = _Numbers(cfg, CENT, AMOUNT_LIMIT)
    quantities, amounts = quantity_of.cache, amount_of.cache
    clean_item = _make_item_cleaner(cfg)
    item_cache = clean_item.cache
    date_fmt, time_fmt = cfg["date_format"], cfg["time_format"]
    parse_time = _time_parser(time_fmt)
    max_tnsc, max_item, max_dept = MAX_LEN["tnsc"], MAX_LEN["item_code"], MAX_LEN["department"]
    dates: dict[str, date] = {}
    times: dict[str, time] = {}
    rows = result.rows
    append = rows.append
    reject = result.reject
    for line_no, line, parts in _data_lines(raw, cfg, result, keep_examples):
        tnsc = parts[i_tnsc].strip()
        if not tnsc:
            reject(line_no, "empty transaction number", line, keep_examples)
            continue
        text = parts[i_date]
        sale_date = dates.get(text)
        if sale_date is None:
            try:
                sale_date = dates[text] = datetime.strptime(text.strip(), date_fmt).date()
            except ValueError:
                reject(line_no, f"bad date {text.strip()[:30]!r} (expected {date_fmt})", line, keep_examples)
                continue
        sale_time = None
        if i_time is not None:
            text = parts[i_time]
            sale_time = times.get(text)
            if sale_time is None:
                try:
                    sale_time = times[text] = parse_time(text)
                except ValueError:
                    reject(line_no, f"bad time {text.strip()[:30]!r} (expected {time_fmt})", line, keep_examples)
                    continue
        raw_item = parts[i_item]
        item = item_cache.get(raw_item)
        if item is None:
            item = clean_item(raw_item)
        if not item:
            reject(line_no, "empty item code", line, keep_examples)
            continue
        department = parts[i_dept].strip() if i_dept is not None else ""
        quantity = quantities.get(parts[i_qty])
        if quantity is None:
            try:
                quantity = quantity_of(parts[i_qty])
            except (InvalidOperation, ValueError):
                reject(line_no, f"bad quantity {parts[i_qty].strip()[:30]!r}", line, keep_examples)
                continue
        amount = amounts.get(parts[i_amount])
        if amount is None:
            try:
                amount = amount_of(parts[i_amount])
            except (InvalidOperation, ValueError):
                reject(line_no, f"bad amount {parts[i_amount].strip()[:30]!r}", line, keep_examples)
                continue
        if len(tnsc) > max_tnsc or len(item) > max_item or len(department) > max_dept:
            reject(line_no, "a field is longer than allowed", line, keep_examples)
            continue
        append((line_no, tnsc, sale_date, sale_time, item, department, quantity, amount))
    return result


def parse_payments(raw: bytes, cfg: dict, *, keep_examples: int = 20) -> ParseResult:
    """rd5500 rows → (line_no, tnsc, payment_method, amount or None)."""
    result = ParseResult(PAYMENTS)
    cols = cfg["columns"][PAYMENTS]
    i_tnsc, i_method, i_amount = cols["tnsc"], cols["payment_method"], cols.get("amount")
    number = _Numbers(cfg, CENT, AMOUNT_LIMIT)
    mapping = cfg["cleaning"].get("payment_method_map") or {}
    for line_no, line, parts in _data_lines(raw, cfg, result, keep_examples):
        tnsc, method = parts[i_tnsc].strip(), parts[i_method].strip()
        method = mapping.get(method, method)
        if not tnsc or not method:
            result.reject(line_no, "empty transaction number or payment method", line, keep_examples)
            continue
        if len(tnsc) > MAX_LEN["tnsc"] or len(method) > 40:
            result.reject(line_no, "a field is longer than allowed", line, keep_examples)
            continue
        amount = None
        if i_amount is not None:
            try:
                amount = number(parts[i_amount])
            except (InvalidOperation, ValueError):
                result.reject(line_no, f"bad amount {parts[i_amount].strip()[:30]!r}", line, keep_examples)
                continue
        result.rows.append((line_no, tnsc, method, amount))
    return result


def payment_methods(payments: ParseResult | None) -> dict[str, str]:
    """tnsc → payment method; split payments become 'CARD+CASH'."""
    by_tnsc: dict[str, set[str]] = {}
    if payments is not None:
        for _line, tnsc, method, _amount in payments.rows:
            by_tnsc.setdefault(tnsc, set()).add(method)
    return {tnsc: "+".join(sorted(methods))[:100] for tnsc, methods in by_tnsc.items()}


def combine(sales: ParseResult, payments: ParseResult | None):
    """One record per sales line with its payment method: (…sales fields, payment_method)."""
    methods = payment_methods(payments)
    get = methods.get
    return [row + (get(row[1], ""),) for row in sales.rows]
