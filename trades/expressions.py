"""The expression language of derived export columns: a real parser, never `eval`.

Grammar (lowest precedence first; `^` is right-associative and binds tighter
than unary minus, so `-PRICE^2` is `-(PRICE^2)` and `2^-1` is allowed):

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := "-" unary | power
    power   := atom ("^" unary)?
    atom    := NUMBER | NAME | "(" expr ")"
    NAME    := PRICE | SIZE            (case-insensitive)

Semantics, identical in SQL (PostgreSQL, SQLite) and in the Python reference
`evaluate`: floating point; division by zero and undefined powers (0^-1,
(-8)^0.5, overflow) give an empty value (NULL / None) instead of an error;
an empty operand makes the whole result empty.

Errors carry a 1-based character position and say what is wrong:
"unbalanced parenthesis at 7", "unknown name PRIC at 1".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MAX_LENGTH = 200
MAX_DEPTH = 40
NAMES = {"PRICE": "price", "SIZE": "size"}


class ExpressionError(ValueError):
    def __init__(self, message: str, position: int):
        self.message = message
        self.position = position  # 1-based
        super().__init__(f"{message} at {position}")


# --- AST ----------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Var:
    name: str  # "PRICE" | "SIZE"


@dataclass(frozen=True)
class Neg:
    operand: object


@dataclass(frozen=True)
class Bin:
    op: str  # + - * / ^
    left: object
    right: object


# --- tokens -------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>[-+*/^()])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # number | name | op | end
    text: str
    pos: int  # 1-based


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        match = _TOKEN_RE.match(text, i)
        if match is None:
            raise ExpressionError(f"unexpected character {text[i]!r}", i + 1)
        kind = match.lastgroup
        value = match.group()
        if kind == "number":
            after = match.end()
            if after < len(text) and (text[after].isalnum() or text[after] in "._"):
                # "1.2.3", "2PRICE", "1e": one malformed number, reported whole
                end = after
                while end < len(text) and (text[end].isalnum() or text[end] in "._"):
                    end += 1
                raise ExpressionError(f"invalid number {text[i:end]!r}", i + 1)
        if kind != "space":
            tokens.append(Token(kind, value, i + 1))
        i = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# --- parser -------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.open_parens: list[int] = []

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def describe(self, tok: Token) -> str:
        return "end of expression" if tok.kind == "end" else repr(tok.text)

    def parse(self):
        if self.tok.kind == "end":
            raise ExpressionError("expression is empty", 1)
        node = self.expr()
        tok = self.tok
        if tok.kind != "end":
            if tok.text == ")":
                raise ExpressionError("unbalanced parenthesis", tok.pos)
            raise ExpressionError(f"missing operator before {self.describe(tok)}", tok.pos)
        return node

    def expr(self):
        node = self.term()
        while self.tok.text in ("+", "-") and self.tok.kind == "op":
            op = self.advance()
            node = Bin(op.text, node, self.operand_after(op, self.term))
        return node

    def term(self):
        node = self.unary()
        while self.tok.text in ("*", "/") and self.tok.kind == "op":
            op = self.advance()
            node = Bin(op.text, node, self.operand_after(op, self.unary))
        return node

    def unary(self):
        if self.tok.kind == "op" and self.tok.text == "-":
            op = self.advance()
            return Neg(self.operand_after(op, self.unary))
        return self.power()

    def power(self):
        node = self.atom()
        if self.tok.kind == "op" and self.tok.text == "^":
            op = self.advance()
            node = Bin("^", node, self.operand_after(op, self.unary))
        return node

    def operand_after(self, op: Token, rule):
        tok = self.tok
        if tok.kind == "end" or (tok.kind == "op" and tok.text in "+*/^)"):
            where = tok.pos
            if tok.text == ")" and not self.open_parens:
                raise ExpressionError("unbalanced parenthesis", where)
            raise ExpressionError(f"missing operand after {op.text!r}", where)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError("expression is nested too deeply", tok.pos)
        try:
            return rule()
        finally:
            self.depth -= 1

    def atom(self):
        tok = self.tok
        if tok.kind == "number":
            self.advance()
            value = float(tok.text)
            if not math.isfinite(value):
                raise ExpressionError(f"number {tok.text} is too large", tok.pos)
            return Num(value)
        if tok.kind == "name":
            self.advance()
            name = tok.text.upper()
            if name not in NAMES:
                raise ExpressionError(f"unknown name {tok.text}", tok.pos)
            return Var(name)
        if tok.kind == "op" and tok.text == "(":
            self.advance()
            self.open_parens.append(tok.pos)
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExpressionError("expression is nested too deeply", tok.pos)
            if self.tok.kind == "op" and self.tok.text == ")":
                raise ExpressionError("empty parentheses", self.tok.pos)
            node = self.expr()
            self.depth -= 1
            if not (self.tok.kind == "op" and self.tok.text == ")"):
                if self.tok.kind == "end":
                    raise ExpressionError("unbalanced parenthesis", self.open_parens[-1])
                raise ExpressionError(f"missing operator before {self.describe(self.tok)}", self.tok.pos)
            self.advance()
            self.open_parens.pop()
            return node
        if tok.kind == "end":
            raise ExpressionError("expression is incomplete", tok.pos)
        if tok.text == ")":
            raise ExpressionError("unbalanced parenthesis", tok.pos)
        raise ExpressionError(f"unexpected {self.describe(tok)}", tok.pos)


def parse(text: str):
    """Parse `text` into an AST; raises ExpressionError (never anything else)."""
    if not isinstance(text, str):
        raise ExpressionError("expression must be text", 1)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    try:
        return _Parser(text).parse()
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps us far below
        raise ExpressionError("expression is nested too deeply", 1) from None


def validate(text: str) -> tuple[bool, str, int | None]:
    """(valid, error message, 1-based position) — for the as-you-type check."""
    try:
        parse(text)
    except ExpressionError as exc:
        return False, str(exc), exc.position
    return True, "", None


def normalize(text: str) -> str:
    """Canonical display text: single spaces removed around tokens, names upper-case."""
    parts = []
    for tok in tokenize(text):
        if tok.kind == "end":
            break
        parts.append(tok.text.upper() if tok.kind == "name" else tok.text)
    return "".join(parts)


# --- Python reference evaluation ----------------------------------------------


def safe_pow(a, b):
    """The power used everywhere (SQL functions mirror it): None where undefined."""
    if a is None or b is None:
        return None
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return None
    if a == 0.0 and b < 0:
        return None
    if a < 0 and b != math.trunc(b):
        return None
    if a != 0.0 and math.isfinite(a) and math.isfinite(b):
        exponent = b * math.log(abs(a))
        if exponent > 709.0:
            return None
        if exponent < -708.0:
            return 0.0
    try:
        return math.pow(a, b)
    except (OverflowError, ValueError):
        return None


def evaluate(node, *, price, size):
    """Reference evaluation of an AST on one row (used by tests and the old path)."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Var):
        value = price if node.name == "PRICE" else size
        return None if value is None else float(value)
    if isinstance(node, Neg):
        value = evaluate(node.operand, price=price, size=size)
        return None if value is None else -value
    if isinstance(node, Bin):
        left = evaluate(node.left, price=price, size=size)
        right = evaluate(node.right, price=price, size=size)
        if left is None or right is None:
            return None
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        if node.op == "/":
            return None if right == 0 else left / right
        return safe_pow(left, right)
    raise TypeError(f"not an expression node: {node!r}")


# --- SQL translation ------------------------------------------------------------


def to_sql(node, *, vendor: str, price_col: str = "price", size_col: str = "size") -> tuple[str, list]:
    """SQL text (with `%s` placeholders) and its parameters; every number is a parameter."""
    params: list = []
    # SIZE is an integer column: cast so that SIZE/2 is not integer division.
    size_sql = f"CAST({size_col} AS DOUBLE PRECISION)" if vendor == "postgresql" else f"CAST({size_col} AS REAL)"
    price_sql = f"CAST({price_col} AS DOUBLE PRECISION)" if vendor == "postgresql" else price_col
    number_sql = "CAST(%s AS DOUBLE PRECISION)" if vendor == "postgresql" else "%s"

    def emit(n) -> str:
        if isinstance(n, Num):
            params.append(n.value)
            return number_sql
        if isinstance(n, Var):
            return price_sql if n.name == "PRICE" else size_sql
        if isinstance(n, Neg):
            return f"(-{emit(n.operand)})"
        if isinstance(n, Bin):
            left = emit(n.left)
            right = emit(n.right)
            if n.op == "/":
                return f"({left} / NULLIF({right}, 0))"
            if n.op == "^":
                return f"trades_pow({left}, {right})"
            return f"({left} {n.op} {right})"
        raise TypeError(f"not an expression node: {n!r}")

    return emit(node), params


# PostgreSQL twin of `safe_pow`, created by a migration.
PG_POW_FUNCTION = """
CREATE OR REPLACE FUNCTION trades_pow(a double precision, b double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN a IS NULL OR b IS NULL THEN NULL
    WHEN a = 0 AND b < 0 THEN NULL
    WHEN a = 0 THEN power(a, b)
    WHEN a < 0 AND b <> trunc(b) THEN NULL
    WHEN b * ln(abs(a)) > 709 THEN NULL
    WHEN b * ln(abs(a)) < -708 THEN 0
    ELSE power(a, b)
  END
$$;
"""
