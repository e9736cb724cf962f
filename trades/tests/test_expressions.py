"""The expression language: parser errors, SQL translation vs the Python reference (property-based)."""

import math

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trades import expressions as ex


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("PRIC + 1", "'PRIC' is not a name here: write PRICE or SIZE", 1),
        ("(PRICE + 1", "This '(' is never closed: add a ')' after what it holds", 1),
        ("PRICE + 1)", "This ')' has no '(' before it: remove it or add a '(' where its part begins", 10),
        ("(PRICE*2)+(SIZE", "This '(' is never closed: add a ')' after what it holds", 11),
        ("PRICE*)", "This ')' has no '(' before it: remove it or add a '(' where its part begins", 7),
        ("PRICE +", "'+' needs a number, PRICE or SIZE after it", 8),
        ("PRICE ** 2", "'*' needs a number, PRICE or SIZE after it", 8),
        ("(PRICE/)", "'/' needs a number, PRICE or SIZE after it", 8),
        ("*PRICE", "'*' needs a number, PRICE or SIZE before it", 1),
        ("PRICE SIZE", "Put an operator (+ - * / ^) before 'SIZE'", 7),
        ("PRICE (2)", "Put an operator (+ - * / ^) before '('", 7),
        ("(1)(2)", "Put an operator (+ - * / ^) before '('", 4),
        ("PRICE $ 2", "'$' cannot be used: write numbers, PRICE, SIZE, + - * / ^ and parentheses", 7),
        ("", "Type an expression over PRICE and SIZE, such as PRICE*SIZE", 1),
        ("   ", "Type an expression over PRICE and SIZE, such as PRICE*SIZE", 1),
        ("()", "The parentheses are empty: put a number, PRICE or SIZE inside", 2),
        ("PRICE*(", "The expression ends too early: finish it with a number, PRICE or SIZE", 8),
        ("1.2.3", "'1.2.3' is not a number: write numbers such as 2, 0.5 or 1e3", 1),
        ("2PRICE", "'2PRICE' needs an operator between the number and the name, such as 2*PRICE", 1),
        ("1e999", "'1e999' is too large a number", 1),
    ],
)
def test_errors_say_what_to_do_and_where(text, message, position):
    valid, error, at = ex.validate(text)
    assert not valid
    assert error == f"{message} (character {position})"
    assert at == position
    # Words for a person, never the parser's state.
    for jargon in ("operand", "token", "unexpected", "unbalanced", "parse"):
        assert jargon not in error.lower()


@pytest.mark.parametrize("text", ["+PRICE", "PRICE + +2", "-+-PRICE", "+(SIZE)", "PRICE^+2", "2*+SIZE"])
def test_unary_plus_is_accepted_like_unary_minus(text):
    assert ex.validate(text) == (True, "", None)
    minus = text.replace("+", "-") if text.startswith("+") else None
    if minus:
        assert ex.evaluate(ex.parse(minus), price=3, size=5) == -ex.evaluate(ex.parse(text), price=3, size=5)


def test_unary_plus_changes_nothing():
    assert ex.evaluate(ex.parse("+PRICE^2"), price=3, size=1) == 9
    assert ex.evaluate(ex.parse("2^+1"), price=0, size=0) == 2
    assert ex.evaluate(ex.parse("PRICE - +SIZE"), price=3, size=5) == -2
    assert ex.parse("+(PRICE)") == ex.parse("PRICE")
    sql, params = ex.to_sql(ex.parse("+PRICE * +2"), vendor="sqlite")
    assert params == [2.0] and "+" not in sql


@pytest.mark.parametrize("text", [
    "1+" * 100_000 + "1",                  # very long
    "(" * 10_000 + "1" + ")" * 10_000,     # deeply nested, far past the length limit
    "(" * 60 + "1" + ")" * 60,             # deeply nested within the length limit
    "-" * 60 + "1", "+" * 60 + "1", "-+" * 30 + "1",
    "2^" * 60 + "2",
])
def test_hostile_expressions_get_a_clear_error(text):
    valid, error, position = ex.validate(text)
    assert not valid and position >= 1
    assert error.startswith(("The expression is longer than 200 characters: shorten it",
                             "The expression is nested too deeply (at most 40 parentheses and signs inside each other)"))


def test_text_that_is_not_an_expression_gets_a_clear_error():
    for odd in [None, 5, ["PRICE"], {"expression": "PRICE"}]:
        with pytest.raises(ex.ExpressionError) as caught:
            ex.parse(odd)
        assert str(caught.value) == "The expression must be text (character 1)"
    assert ex.validate("PRICE\x00")[1].startswith("'\\x00' cannot be used")
    assert ex.validate("PRICE × 2")[1] == ("'×' cannot be used: write numbers, PRICE, SIZE, + - * / ^ and parentheses "
                                           "(character 7)")


def test_valid_expressions_and_precedence():
    assert ex.evaluate(ex.parse("-PRICE^2"), price=3, size=1) == -9
    assert ex.evaluate(ex.parse("2^3^2"), price=0, size=0) == 512  # right-associative
    assert ex.evaluate(ex.parse("(PRICE + SIZE) / 2"), price=3, size=5) == 4
    assert ex.evaluate(ex.parse("SIZE / (PRICE - PRICE)"), price=3, size=5) is None  # empty, not an error
    assert ex.evaluate(ex.parse("(-8)^0.5"), price=0, size=0) is None
    assert ex.evaluate(ex.parse("2^-1"), price=0, size=0) == 0.5
    assert ex.normalize(" price *  size ") == "PRICE*SIZE"


def test_no_eval_numbers_are_parameters():
    sql, params = ex.to_sql(ex.parse("PRICE * 1000 + 7"), vendor="sqlite")
    assert "1000" not in sql and "7" not in sql
    assert params == [1000.0, 7.0]


def test_lengths_and_nesting_are_bounded():
    assert "longer than 200 characters" in ex.validate("1+" * 150 + "1")[1]
    assert not ex.validate("(" * 60 + "1" + ")" * 60)[0]
    assert not ex.validate("-" * 60 + "1")[0]


# --- property-based: SQL == Python reference; garbage never raises -----------------------

numbers = st.one_of(
    st.integers(min_value=0, max_value=50).map(str),
    st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False).map(str),
)
leaves = st.one_of(st.sampled_from(["PRICE", "SIZE", "price"]), numbers)


def _combine(children):
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/", "^"]), children).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})" if t[1] != "^" else f"({t[0]})^({t[2]})"
    )
    return st.one_of(binary, children.map(lambda c: f"-{c}"), children.map(lambda c: f"({c})"))


valid_expressions = st.recursive(leaves, _combine, max_leaves=8)
rows = st.tuples(
    st.floats(min_value=0, max_value=1000, allow_nan=False).map(lambda v: round(v, 2)),
    st.integers(min_value=0, max_value=100_000),
)


def _sql_value(text, price, size):
    sql, params = ex.to_sql(ex.parse(text), vendor=connection.vendor, price_col="p", size_col="s")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql} FROM (SELECT %s AS p, %s AS s) t", params + [price, size])
        return cursor.fetchone()[0]


def _same(a, b):
    def clean(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        return float(v)

    a, b = clean(a), clean(b)
    if a is None or b is None:
        return a is b
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.django_db
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=valid_expressions, row=rows)
def test_sql_equals_python_reference(text, row):
    price, size = row
    assert ex.validate(text)[0], text
    expected = ex.evaluate(ex.parse(text), price=price, size=size)
    got = _sql_value(text, price, size)
    assert _same(got, expected), (text, price, size, got, expected)


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet="PRICESZ pricesz0123456789.+-*/^()$,eE_ \t", max_size=40))
def test_random_strings_give_a_clear_answer_never_an_exception(text):
    valid, error, position = ex.validate(text)
    if valid:
        assert error == "" and position is None
    else:
        assert error and isinstance(position, int) and 1 <= position <= len(text) + 1
        assert error.endswith(f" (character {position})")


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_any_unicode_is_handled(text):
    valid, error, position = ex.validate(text)
    assert valid or (error and position)
