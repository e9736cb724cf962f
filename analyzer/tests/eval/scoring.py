"""Scoring one answer against its pandas truth: right, wrong, or asked back.

An answer is its stored messages (query results, charts, text). "Asked back" is an answer that ran no query
and drew no chart (it asked which column was meant, or said it cannot answer); anything else is right
only when its first query result (or its chart) holds the truth.
"""

from __future__ import annotations

import math

import pandas as pd

RIGHT, WRONG, ASKED = "right", "wrong", "asked back"


def _close(a, b) -> bool:
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return False
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same_key(cell, key) -> bool:
    """A group key as the answer shows it: text (any case), a number, or a date that starts with the key."""
    if cell is None:
        return False
    key = key.item() if hasattr(key, "item") else key
    if _is_number(key) and _is_number(cell):
        return _close(cell, key)
    a, b = str(cell).strip().lower(), str(key).strip().lower()
    return a == b or (a[:4].isdigit() and a.startswith(b))


def _mapping_right(rows: list[dict], truth: dict) -> bool:
    keyed = [r for r in rows if next(iter(r.values()), None) is not None]
    if len(keyed) != len(truth):
        return False
    for key, value in truth.items():
        if not any(any(_same_key(c, key) for c in r.values()) and
                   any(_is_number(c) and _close(c, value) for c in r.values()) for r in keyed):
            return False
    return True


def _plots(messages) -> list[dict]:
    return [m.data["vega_lite_spec"] for m in messages if m.kind == "plot"]


def _chart_right(check: str, messages, truth) -> bool:
    kind = check.split(":", 1)[1]
    for spec in _plots(messages):
        mark = spec["mark"]["type"] if isinstance(spec["mark"], dict) else spec["mark"]
        enc = spec.get("encoding", {})
        if kind == "point" and mark == "point":
            if (enc["x"]["field"], enc["y"]["field"]) == tuple(truth):
                return True
        elif kind == "histogram" and mark == "bar" and enc.get("x", {}).get("bin"):
            if sum(r["count"] for r in spec["data"]["values"]) == truth:
                return True
        elif kind in ("bar", "line") and mark == kind:
            return True
    return False


def score(messages, check: str, truth) -> str:
    results = [m for m in messages if m.kind == "query_result"]
    plots = _plots(messages)
    if not results and not plots:
        return RIGHT if check == "ask" else ASKED
    if check == "ask":
        return WRONG
    if check.startswith("chart:"):
        return RIGHT if _chart_right(check, messages, truth) else WRONG
    first = results[0].data
    if first.get("is_error"):
        return WRONG
    rows = first["result"]
    if isinstance(truth, pd.Series):
        truth = truth.to_dict()
    if check == "scalar":
        return RIGHT if rows and any(_close(c, truth) if _is_number(truth) or hasattr(truth, "__float__")
                                     else _same_key(c, truth) for c in rows[0].values()) else WRONG
    if check == "top_key":
        return RIGHT if rows and any(_same_key(c, truth) for c in rows[0].values()) else WRONG
    if check == "mapping":
        return RIGHT if _mapping_right(rows, truth) else WRONG
    if check == "sequence":
        columns = rows[0].keys() if rows else []
        return RIGHT if len(rows) == len(truth) and any(
            all(_close(r[c], t) for r, t in zip(rows, truth)) for c in columns) else WRONG
    if check == "set":
        columns = rows[0].keys() if rows else []
        wanted = {str(v).lower() for v in truth}
        return RIGHT if any({str(r[c]).lower() for r in rows if r[c] is not None} == wanted for c in columns) \
            else WRONG
    raise ValueError(f"unknown check {check!r}")
