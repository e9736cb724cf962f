"""Parser and file selection: both dialects, config edge cases, rejected rows, ties, empty and truncated files."""

from datetime import date, time
from decimal import Decimal

import pytest

from etl.parsing import (
    combine, count_data_rows, effective_config, parse_payments, parse_sales, validate_config,
)
from etl.pipeline import Candidate, remote_file_choose

OLD = effective_config(is_new_branch=False, overrides={})
NEW = effective_config(is_new_branch=True, overrides={})

OLD_SALES = (
    "TNSC;DATE;HEURE;RAYON;ARTICLE;QTE;MONTANT\r\n"
    "1001;02/01/2025;08:01:02;Épicerie;PLU000123;1,500;3,20\r\n"
    "1001;02/01/2025;08:01:02;Crèmerie;PLU-77;2;1.234,50\r\n"
    "1002;31/02/2025;09:00:00;Boissons;PLU9;1;1,00\r\n"
    "1003;03/01/2025;09:10:00;Boissons;PLU9;abc;1,00\r\n"
    "1004;03/01/2025;09:10:00;Boissons\r\n"
    "\r\n"
).encode("cp1252")
OLD_PAYMENTS = "TNSC;DATE;MODE;MONTANT\r\n1001;02/01/2025;CARD;1237,70\r\n1001;02/01/2025;CASH;0,00\r\n".encode("cp1252")


def test_old_dialect_cp1252_decimal_comma_and_prefix_strip():
    result = parse_sales(OLD_SALES, OLD)
    assert len(result.rows) == 2
    line, tnsc, day, clock, item, dept, qty, amount = result.rows[0]
    assert (line, tnsc, day, clock, item, dept) == (2, "1001", date(2025, 1, 2), time(8, 1, 2), "000123", "Épicerie")
    assert qty == Decimal("1.500") and amount == Decimal("3.20")
    assert result.rows[1][4] == "77" and result.rows[1][7] == Decimal("1234.50")  # "PLU-77", thousands separator


def test_rejected_rows_are_counted_with_reasons_never_dropped():
    result = parse_sales(OLD_SALES, OLD, keep_examples=2)
    assert result.data_lines == 5 and result.rejected == 3  # the blank line is not data
    assert [e.line for e in result.examples] == [4, 5]  # only the first 2 kept, all counted
    assert "bad date" in result.examples[0].reason and "31/02/2025" in result.examples[0].reason
    assert "bad quantity" in result.examples[1].reason
    full = parse_sales(OLD_SALES, OLD)
    assert "expected at least 7 fields, got 4" in full.examples[2].reason


def test_new_dialect_utf8_iso_quotes_and_extra_columns():
    raw = (
        "tnsc,date,time,item_code,department,quantity,amount,extra1,extra2\n"
        '5,2025-01-02,10:00:00,ab12,"Fruits, légumes",1.000,2.50,x,y\n'
        "6,02/01/2025,10:00:00,ab12,X,1,2.50\n"
        "7,2025-01-02,10:00:00,ab13,X,1,NaN\n"
        "8,2025-01-02,25:00:00,ab13,X,1,1\n"
    ).encode("utf-8")
    result = parse_sales(raw, NEW)
    assert [r[1] for r in result.rows] == ["5"]
    assert result.rows[0][4] == "AB12" and result.rows[0][5] == "Fruits, légumes"
    reasons = [e.reason for e in result.examples]
    assert "bad date" in reasons[0] and "bad amount" in reasons[1] and "bad time" in reasons[2]


def test_config_overrides_columns_decimal_comma_and_cleaning():
    cfg = effective_config(is_new_branch=True, overrides={
        "delimiter": "|", "decimal_comma": True, "thousands_separator": "", "skip_header_rows": 0,
        "date_format": "%d.%m.%Y",
        "columns": {"rd5000": {"tnsc": 1, "date": 0, "time": None, "item_code": 2, "department": None,
                               "quantity": 3, "amount": 4}},
        "cleaning": {"strip_leading_zeros": True, "uppercase_item_code": False, "payment_method_map": {"01": "CASH"}},
    })
    assert validate_config(cfg) == {}
    result = parse_sales(b"02.01.2025|T1|000abc|2|10,5\n", cfg)
    assert result.rows == [(1, "T1", date(2025, 1, 2), None, "abc", "", Decimal("2.000"), Decimal("10.50"))]
    payments = parse_payments(b"T1,01,10.50\n", effective_config(is_new_branch=True, overrides={
        "skip_header_rows": 0, "cleaning": {"payment_method_map": {"01": "CASH"}}}))
    assert payments.rows[0][2] == "CASH"


@pytest.mark.parametrize("overrides, path", [
    ({"delimiter": ";;"}, "delimiter"),
    ({"encoding": "klingon-8"}, "encoding"),
    ({"skip_header_rows": -1}, "skip_header_rows"),
    ({"date_format": "YYYY"}, "date_format"),
    ({"decimal_comma": "yes"}, "decimal_comma"),
    ({"columns": {"rd5000": {"tnsc": 0, "date": 0}}}, "columns.rd5000.date"),
    ({"columns": {"rd5000": {"amount": None}}}, "columns.rd5000.amount"),
    ({"columns": {"rd5000": {"colour": 9}}}, "columns.rd5000.colour"),
    ({"columns": {"rd5000": {"tnsc": "first"}}}, "columns.rd5000.tnsc"),
    ({"cleaning": {"strip_item_prefixes": "PLU"}}, "cleaning.strip_item_prefixes"),
    ({"nonsense": 1}, "nonsense"),
])
def test_config_validation_messages(overrides, path):
    errors = validate_config(overrides)
    assert path in errors, errors
    assert errors[path]


def test_combine_joins_payment_methods_on_tnsc():
    sales = parse_sales(OLD_SALES, OLD)
    payments = parse_payments(OLD_PAYMENTS, OLD)
    rows = combine(sales, payments)
    assert [r[-1] for r in rows] == ["CARD+CASH", "CARD+CASH"]
    assert combine(sales, None)[0][-1] == ""


def test_row_count_ignores_truncated_last_line_and_garbage():
    full = OLD_SALES[: OLD_SALES.index(b"1002")]
    assert count_data_rows(full, OLD, "rd5000") == 2
    truncated = full[:-12]
    assert count_data_rows(truncated, OLD, "rd5000") == 1
    assert count_data_rows(b"", OLD, "rd5000") == 0
    assert count_data_rows(bytes(range(256)) * 4, NEW, "rd5000") == 0


def c(name, rows, size=100, modified=None, problem=""):
    return Candidate(name=name, filetype="rd5000", rows=rows, size=size, modified=modified, problem=problem)


def test_choose_most_rows_with_reason():
    best, reason = remote_file_choose([c("a", 10), c("b", 30), c("c", 20)])
    assert best.name == "b" and "most data rows (30) of 3" in reason


def test_choose_ties_go_to_larger_then_newer_then_later_name():
    best, reason = remote_file_choose([c("a", 30, size=100), c("b", 30, size=120)])
    assert best.name == "b" and "tied on rows with a" in reason
    best, _ = remote_file_choose([c("a", 30, modified="2025-01-02T10:00"), c("b", 30, modified="2025-01-02T09:00")])
    assert best.name == "a"
    best, _ = remote_file_choose([c("rd5000_1", 30), c("rd5000_2", 30)])
    assert best.name == "rd5000_2"


def test_choose_skips_empty_and_problem_files():
    best, reason = remote_file_choose([c("empty", 0), c("huge", None, problem="too large"), c("ok", 1)])
    assert best.name == "ok" and "1 unusable" in reason
    best, reason = remote_file_choose([c("empty", 0), c("empty2", 0)])
    assert best is None and "empty" in reason
    best, reason = remote_file_choose([])
    assert best is None and "no file" in reason


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=600), new=st.booleans())
def test_hostile_bytes_never_raise(raw, new):
    cfg = NEW if new else OLD
    for parse, ftype in ((parse_sales, "rd5000"), (parse_payments, "rd5500")):
        result = parse(raw, cfg)
        assert len(result.rows) + result.rejected == result.data_lines
        assert count_data_rows(raw, cfg, ftype) >= 0


@settings(max_examples=150, deadline=None)
@given(line=st.text(alphabet=st.sampled_from(list('0123456789;,./:- "+eEaN')), max_size=80))
def test_hostile_lines_are_parsed_or_rejected(line):
    raw = ("header\n" + line + "\n").encode()
    result = parse_sales(raw, OLD)
    assert len(result.rows) + result.rejected == result.data_lines


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.text(alphabet=st.sampled_from(list("0123456789;;;;,./:- PLUé\t")), max_size=40), max_size=12),
       ending=st.sampled_from(["\n", "\r\n", "\r"]), trailer=st.sampled_from(["", "\r\n", "\n\n"]))
def test_arrow_csv_reading_and_line_by_line_reading_agree(lines, ending, trailer):
    """The fast reading (Arrow's CSV reader) and the line-by-line one give the same lines, numbers and fields."""
    from hypothesis import assume

    from etl.parsing import lines as reading

    text = "TNSC;DATE;HEURE;RAYON;ARTICLE;QTE;MONTANT" + ending + ending.join(lines) + trailer
    try:
        fast = reading._split_plain(text, OLD, 7)
    except reading._NotPlain:
        assume(False)
    slow = reading._split_each(text, OLD, 7)
    assert (fast.data_lines, fast.problems) == (slow.data_lines, slow.problems)
    assert fast.numbers.tolist() == slow.numbers.tolist()
    for index in range(7):
        assert fast.column(index).to_pylist() == slow.column(index).to_pylist()
    for number in fast.numbers.tolist():
        assert fast.line_text(number) == slow.line_text(number)
