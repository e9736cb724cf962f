"""Splitting a POS export file into its data lines and fields, with the line numbers and the lines
rejected on the way (blank, undecodable, too few fields).

Two readings with one result: Arrow's CSV reader (C++) for the usual file, and, for any other
file, `str.splitlines()` with every line split by Arrow and the odd lines judged one by one.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def decode(raw: bytes, cfg: dict) -> str:
    text = raw.decode(cfg["encoding"], errors="replace")
    return text[1:] if text.startswith("\ufeff") else text


def _split_quoted(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return line.split(delimiter)


def _needed_fields(cfg: dict, filetype: str) -> int:
    return max(i for i in cfg["columns"][filetype].values() if i is not None) + 1


@dataclass
class Lines:
    """The data lines of a file that have enough fields: their line numbers and fields, in line order."""

    data_lines: int  # non-blank data lines
    problems: list[tuple[int, str, str]]  # (line number, reason, text) of the lines rejected while splitting
    plain_numbers: np.ndarray  # line numbers (ascending) of the kept lines read in bulk …
    plain_field: Callable[[int], pa.Array]  # … and their field i, as one column
    extra: dict[int, list[str]]  # line number → fields, of the kept lines read one by one (ascending)
    line_text: Callable[[int], str]  # line number → the line

    def __post_init__(self):
        self.numbers = self.plain_numbers
        self.order = None
        if self.extra:
            unsorted = np.concatenate([self.plain_numbers, np.fromiter(self.extra, dtype=np.int64, count=len(self.extra))])
            self.order = np.argsort(unsorted, kind="stable")
            self.numbers = unsorted[self.order]

    def column(self, index: int) -> pa.Array:
        """Field `index` of every kept line, in line order."""
        texts = self.plain_field(index)
        if self.order is None:
            return texts
        extra = pa.array([parts[index] for parts in self.extra.values()], pa.string())
        return pa.concat_arrays([texts, extra]).take(pa.array(self.order))


def as_mask(array) -> np.ndarray:
    return np.array(array.to_numpy(zero_copy_only=False), dtype=bool)


# Line breaks of str.splitlines() that Arrow's CSV reader does not know (it splits on \r, \n, \r\n).
_OTHER_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_CSV_PLAIN = {"quote_char": False, "double_quote": False, "escape_char": False, "newlines_in_values": False}


class _NotPlain(Exception):
    """The file needs the line-by-line reading."""


def _split_plain(text: str, cfg: dict, needed: int) -> Lines:
    """Arrow's CSV reader (C++) with quoting off, for the usual file: no quotes, no undecodable bytes,
    no blank line before the last data line, only \r / \n line breaks. The lines it cannot fit in
    its columns come back one by one (`invalid_row_handler`, with their line numbers) and are
    judged here like any line."""
    import pyarrow.csv as pacsv

    delimiter, first = cfg["delimiter"], cfg["skip_header_rows"]
    body = text.rstrip("\r\n")  # trailing blank lines are not data and number nothing
    if (delimiter.isspace() or '"' in body or "\ufffd" in body or "\x00" in body or not body
            or "\n\n" in body or "\r\r" in body or "\n\r" in body or body[0] in "\r\n"
            or any(char in body for char in _OTHER_BREAKS)):
        raise _NotPlain
    head = body[:65536].splitlines()
    if len(head) <= first:
        raise _NotPlain
    width = max(needed, head[first].count(delimiter) + 1)
    try:
        data = body.encode("utf-8")
    except UnicodeEncodeError:
        raise _NotPlain from None
    odd: list[tuple[int, str]] = []

    def set_aside(row) -> str:
        if row.number is None:
            raise _NotPlain
        odd.append((row.number, row.text))
        return "skip"

    names = [f"f{i}" for i in range(width)]
    table = pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=first, use_threads=False,
                                       block_size=min(2**31 - 1, max(1 << 20, len(data) + 1))),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False, invalid_row_handler=set_aside,
                                         **_CSV_PLAIN),
        convert_options=pacsv.ConvertOptions(column_types={name: pa.string() for name in names}, null_values=[],
                                             strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    blank = 0
    problems: list[tuple[int, str, str]] = []
    extra: dict[int, list[str]] = {}
    for line_no, line in odd:
        if line.isspace():
            blank += 1
            continue
        parts = line.split(delimiter)
        if len(parts) < needed:
            problems.append((line_no, f"expected at least {needed} fields, got {len(parts)}", line))
        else:
            extra[line_no] = parts
    total = table.num_rows + len(odd)
    plain_numbers = np.arange(first + 1, first + 1 + total, dtype=np.int64)
    if odd:
        plain_numbers = np.setdiff1d(plain_numbers, np.array([n for n, _ in odd], dtype=np.int64), assume_unique=True)
    if len(plain_numbers) != table.num_rows:  # the reader numbered lines otherwise than expected
        raise _NotPlain

    def line_text(line_no: int) -> str:
        if line_no in extra:
            return delimiter.join(extra[line_no])
        row = int(np.searchsorted(plain_numbers, line_no))
        return delimiter.join(str(table.column(i)[row]) for i in range(width))

    return Lines(total - blank, problems, plain_numbers, lambda i: table.column(i).combine_chunks(), extra, line_text)


def split_lines(raw: bytes, cfg: dict, filetype: str) -> Lines:
    """Header rows and blank lines are skipped; undecodable lines and lines with too few fields are
    problems; `data_lines` counts every non-blank data line."""
    needed = _needed_fields(cfg, filetype)
    text = decode(raw, cfg)
    try:
        return _split_plain(text, cfg, needed)
    except _NotPlain:
        return _split_each(text, cfg, needed)


def _split_each(text: str, cfg: dict, needed: int) -> Lines:
    """Any file: str.splitlines(), every line split by Arrow, the lines that need it (blank, quoted,
    undecodable, too few fields) judged one by one."""
    delimiter = cfg["delimiter"]
    first = cfg["skip_header_rows"]
    body = text.splitlines()[first:]
    try:
        lines = pa.array(body, pa.string())
    except (UnicodeEncodeError, pa.ArrowException):  # lone surrogates from an exotic codec
        lines = pa.array([line.encode("utf-8", "replace").decode("utf-8") for line in body], pa.string())
    fields = pc.split_pattern(lines, pattern=delimiter)
    # Lines that need a look of their own; every other line is non-blank with enough plain fields.
    special = as_mask(pc.less(pc.list_value_length(fields), needed)) if body else np.zeros(0, dtype=bool)
    if '"' in text:
        special |= as_mask(pc.match_substring(lines, '"'))
    undecodable = "\ufffd" in text or "\x00" in text
    if undecodable:
        special |= as_mask(pc.match_substring(lines, "\ufffd")) | as_mask(pc.match_substring(lines, "\x00"))
    if delimiter.isspace():
        special |= np.fromiter((line.isspace() for line in body), dtype=bool, count=len(body))
    blank = 0
    problems: list[tuple[int, str, str]] = []
    extra: dict[int, list[str]] = {}
    for i in np.flatnonzero(special).tolist():
        line = body[i]
        if not line or line.isspace():
            blank += 1
            continue
        line_no = first + i + 1
        if undecodable and ("\ufffd" in line or "\x00" in line):
            problems.append((line_no, "undecodable bytes", line))
            continue
        parts = _split_quoted(line, delimiter) if '"' in line else line.split(delimiter)
        if len(parts) < needed:
            problems.append((line_no, f"expected at least {needed} fields, got {len(parts)}", line))
            continue
        extra[line_no] = parts
    plain = fields.filter(pa.array(~special)) if special.any() else fields
    return Lines(len(body) - blank, problems, np.flatnonzero(~special) + (first + 1),
                  lambda i: pc.list_element(plain, i), extra, lambda line_no: body[line_no - first - 1])
