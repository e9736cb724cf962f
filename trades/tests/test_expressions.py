"""The expression language: parser errors, SQL translation vs the Python reference (property-based)."""

import math

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trades import expressions as ex


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PRIC + 1", "unknown name PRIC at 1"),
        ("(PRICE + 1", "unbalanced parenthesis at 1"),
        ("PRICE + 1)", "unbalanced parenthesis at 10"),
        ("(PRICE*2)+(SIZE", "unbalanced parenthesis at 11"),
        ("PRICE +", "missing operand after '+' at 8"),
        ("PRICE SIZE", "missing operator before 'SIZE' at 7"),
        ("PRICE $ 2", "unexpected character '$' at 7"),
        ("", "expression is empty at 1"),
        ("()", "empty parentheses at 2"),
        ("1.2.3", "invalid number '1.2.3' at 1"),
        ("PRICE ** 2", "missing operand after '*' at 8"),
    ],
)
def test_errors_name_position_and_problem(text, message):
    valid, error, position = ex.validate(text)
    assert not valid
    assert error == message
    assert position == int(message.rsplit(" ", 1)[1])


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
    assert "longer than" in ex.validate("1+" * 150 + "1")[1]
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
        assert error.endswith(f" at {position}")


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60))
def test_any_unicode_is_handled(text):
    valid, error, position = ex.validate(text)
    assert valid or (error and position)
