"""The expression language of derived export columns: a real parser, never `eval`.

Grammar (lowest precedence first; `^` is right-associative and binds tighter
than a sign, so `-PRICE^2` is `-(PRICE^2)` and `2^-1` is allowed; a unary plus
is accepted like a unary minus and changes nothing):

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := ("-" | "+") unary | power
    power   := atom ("^" unary)?
    atom    := NUMBER | NAME | "(" expr ")"
    NAME    := PRICE | SIZE            (case-insensitive)

Semantics, identical in SQL (PostgreSQL, SQLite) and in the Python reference
`evaluate`: floating point; division by zero and undefined powers (0^-1,
(-8)^0.5, overflow) give an empty value (NULL / None) instead of an error;
an empty operand makes the whole result empty.

Errors carry a 1-based character position and say, in words, what to do:
"'+' needs a number, PRICE or SIZE after it (character 8)", "'PRIC' is not a
name here: write PRICE or SIZE (character 1)". The page shows the position
with a caret; the message never speaks of the parser's state.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MAX_LENGTH = 200
MAX_DEPTH = 40
NAMES = {"PRICE": "price", "SIZE": "size"}
UNOPENED = "This ')' has no '(' before it: remove it or add a '(' where its part begins"
TOO_DEEP = f"The expression is nested too deeply (at most {MAX_DEPTH} parentheses and signs inside each other): simplify it"


class ExpressionError(ValueError):
    def __init__(self, message: str, position: int):
        self.message = message
        self.position = position  # 1-based
        super().__init__(f"{message} (character {position})")


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
            raise ExpressionError(
                f"{text[i]!r} cannot be used: write numbers, PRICE, SIZE, + - * / ^ and parentheses", i + 1)
        kind = match.lastgroup
        value = match.group()
        if kind == "number":
            after = match.end()
            if after < len(text) and (text[after].isalnum() or text[after] in "._"):
                # "1.2.3", "2PRICE", "1e": one malformed number, reported whole
                end = after
                while end < len(text) and (text[end].isalnum() or text[end] in "._"):
                    end += 1
                word = text[i:end]
                glued = re.fullmatch(r"(\d+\.?\d*|\.\d+)([A-Za-z_]\w*)", word)
                if glued and glued.group(2).upper() in NAMES:
                    raise ExpressionError(f"{word!r} needs an operator between the number and the name, "
                                          f"such as {glued.group(1)}*{glued.group(2).upper()}", i + 1)
                raise ExpressionError(f"{word!r} is not a number: write numbers such as 2, 0.5 or 1e3", i + 1)
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

    @staticmethod
    def operator_needed(tok: Token) -> str:
        return f"Put an operator (+ - * / ^) before {tok.text!r}"

    def parse(self):
        if self.tok.kind == "end":
            raise ExpressionError("Type an expression over PRICE and SIZE, such as PRICE*SIZE", 1)
        node = self.expr()
        tok = self.tok
        if tok.kind != "end":
            if tok.text == ")":
                raise ExpressionError(UNOPENED, tok.pos)
            raise ExpressionError(self.operator_needed(tok), tok.pos)
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
        if self.tok.kind == "op" and self.tok.text in ("-", "+"):
            op = self.advance()
            operand = self.operand_after(op, self.unary)
            return Neg(operand) if op.text == "-" else operand
        return self.power()

    def power(self):
        node = self.atom()
        if self.tok.kind == "op" and self.tok.text == "^":
            op = self.advance()
            node = Bin("^", node, self.operand_after(op, self.unary))
        return node

    def operand_after(self, op: Token, rule):
        tok = self.tok
        if tok.kind == "end" or (tok.kind == "op" and tok.text in "*/^)"):
            where = tok.pos
            if tok.text == ")" and not self.open_parens:
                raise ExpressionError(UNOPENED, where)
            raise ExpressionError(f"{op.text!r} needs a number, PRICE or SIZE after it", where)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(TOO_DEEP, tok.pos)
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
                raise ExpressionError(f"{tok.text!r} is too large a number", tok.pos)
            return Num(value)
        if tok.kind == "name":
            self.advance()
            name = tok.text.upper()
            if name not in NAMES:
                raise ExpressionError(f"{tok.text!r} is not a name here: write PRICE or SIZE", tok.pos)
            return Var(name)
        if tok.kind == "op" and tok.text == "(":
            self.advance()
            self.open_parens.append(tok.pos)
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExpressionError(TOO_DEEP, tok.pos)
            if self.tok.kind == "op" and self.tok.text == ")":
                raise ExpressionError("The parentheses are empty: put a number, PRICE or SIZE inside", self.tok.pos)
            node = self.expr()
            self.depth -= 1
            if not (self.tok.kind == "op" and self.tok.text == ")"):
                if self.tok.kind == "end":
                    raise ExpressionError("This '(' is never closed: add a ')' after what it holds",
                                          self.open_parens[-1])
                raise ExpressionError(self.operator_needed(self.tok), self.tok.pos)
            self.advance()
            self.open_parens.pop()
            return node
        if tok.kind == "end":
            raise ExpressionError("The expression ends too early: finish it with a number, PRICE or SIZE", tok.pos)
        if tok.text == ")":
            raise ExpressionError(UNOPENED, tok.pos)
        raise ExpressionError(f"{tok.text!r} needs a number, PRICE or SIZE before it", tok.pos)


def parse(text: str):
    """Parse `text` into an AST; raises ExpressionError (never anything else)."""
    if not isinstance(text, str):
        raise ExpressionError("The expression must be text", 1)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"The expression is longer than {MAX_LENGTH} characters: shorten it", MAX_LENGTH + 1)
    try:
        return _Parser(text).parse()
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps us far below
        raise ExpressionError(TOO_DEEP, 1) from None


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
