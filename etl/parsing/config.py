"""A branch's parser config: the defaults of each branch kind, overrides on top, and their validation."""

from __future__ import annotations

import codecs
import copy
from datetime import date, datetime, time
from decimal import Decimal

PARSER_VERSION = "etl-parser/1"

SALES = "rd5000"
PAYMENTS = "rd5500"
FILE_TYPES = (SALES, PAYMENTS)

SALES_FIELDS = ("tnsc", "date", "time", "item_code", "department", "quantity", "amount")
SALES_REQUIRED = ("tnsc", "date", "item_code", "quantity", "amount")
PAYMENT_FIELDS = ("tnsc", "payment_method", "amount")
PAYMENT_REQUIRED = ("tnsc", "payment_method")

MAX_LEN = {"tnsc": 40, "item_code": 64, "department": 64, "payment_method": 100}
AMOUNT_LIMIT = Decimal("1e13")
QUANTITY_LIMIT = Decimal("1e10")
CENT = Decimal("0.01")
MILLI = Decimal("0.001")

_OLD_DEFAULTS = {
    "delimiter": ";",
    "encoding": "cp1252",
    "skip_header_rows": 1,
    "date_format": "%d/%m/%Y",
    "time_format": "%H:%M:%S",
    "decimal_comma": True,
    "thousands_separator": ".",
    "columns": {
        SALES: {"tnsc": 0, "date": 1, "time": 2, "department": 3, "item_code": 4, "quantity": 5, "amount": 6},
        PAYMENTS: {"tnsc": 0, "payment_method": 2, "amount": 3},
    },
    "cleaning": {"strip_item_prefixes": ["PLU"], "strip_leading_zeros": False, "uppercase_item_code": True,
                 "payment_method_map": {}},
}
_NEW_DEFAULTS = {
    "delimiter": ",",
    "encoding": "utf-8",
    "skip_header_rows": 1,
    "date_format": "%Y-%m-%d",
    "time_format": "%H:%M:%S",
    "decimal_comma": False,
    "thousands_separator": "",
    "columns": {
        SALES: {"tnsc": 0, "date": 1, "time": 2, "item_code": 3, "department": 4, "quantity": 5, "amount": 6},
        PAYMENTS: {"tnsc": 0, "payment_method": 1, "amount": 2},
    },
    "cleaning": {"strip_item_prefixes": [], "strip_leading_zeros": False, "uppercase_item_code": True,
                 "payment_method_map": {}},
}
TOP_KEYS = set(_OLD_DEFAULTS)
CLEANING_KEYS = set(_OLD_DEFAULTS["cleaning"])


def default_config(*, is_new_branch: bool) -> dict:
    return copy.deepcopy(_NEW_DEFAULTS if is_new_branch else _OLD_DEFAULTS)


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "payment_method_map":
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def effective_config(*, is_new_branch: bool, overrides: dict | None) -> dict:
    """The defaults of the branch kind with the branch's overrides on top."""
    return _merge(default_config(is_new_branch=is_new_branch), overrides or {})


def validate_config(overrides, *, is_new_branch: bool = False) -> dict[str, str]:
    """Problems of a parser_config override, as {path: message}; empty when valid."""
    errors: dict[str, str] = {}
    if not isinstance(overrides, dict):
        return {"parser_config": "Must be a JSON object."}
    for key in overrides:
        if key not in TOP_KEYS:
            errors[key] = f"Unknown setting. Known: {', '.join(sorted(TOP_KEYS))}."
    cfg = _merge(_NEW_DEFAULTS if is_new_branch else _OLD_DEFAULTS, {k: v for k, v in overrides.items() if k in TOP_KEYS})
    delimiter = cfg["delimiter"]
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\r\n\"":
        errors["delimiter"] = "Must be a single character (not a quote or newline)."
    encoding = cfg["encoding"]
    try:
        if not isinstance(encoding, str):
            raise LookupError
        codecs.lookup(encoding)
    except LookupError:
        errors["encoding"] = f"Unknown text encoding {encoding!r}."
    skip = cfg["skip_header_rows"]
    if not isinstance(skip, int) or isinstance(skip, bool) or not 0 <= skip <= 50:
        errors["skip_header_rows"] = "Must be a whole number from 0 to 50."
    for key, sample in (("date_format", date(2024, 12, 31)), ("time_format", time(23, 59, 58))):
        fmt = cfg[key]
        if not isinstance(fmt, str) or not fmt or len(fmt) > 40 or "%" not in fmt:
            errors[key] = "Must be a strptime format such as %d/%m/%Y."
            continue
        try:
            text = sample.strftime(fmt) if key == "date_format" else datetime.combine(date(2024, 1, 1), sample).strftime(fmt)
            datetime.strptime(text, fmt)
        except (ValueError, TypeError):
            errors[key] = f"{fmt!r} is not a usable format."
    if not isinstance(cfg["decimal_comma"], bool):
        errors["decimal_comma"] = "Must be true or false."
    sep = cfg["thousands_separator"]
    if not isinstance(sep, str) or len(sep) > 1:
        errors["thousands_separator"] = "Must be empty or a single character."
    columns = cfg["columns"]
    if not isinstance(columns, dict):
        errors["columns"] = "Must be an object with rd5000 and rd5500 column maps."
    else:
        for ftype in columns:
            if ftype not in FILE_TYPES:
                errors[f"columns.{ftype}"] = "Unknown file type; use rd5000 or rd5500."
        for ftype, names, required in ((SALES, SALES_FIELDS, SALES_REQUIRED), (PAYMENTS, PAYMENT_FIELDS, PAYMENT_REQUIRED)):
            cols = columns.get(ftype)
            if not isinstance(cols, dict):
                errors[f"columns.{ftype}"] = "Must be an object {field: column index}."
                continue
            seen: dict[int, str] = {}
            for name, index in cols.items():
                path = f"columns.{ftype}.{name}"
                if name not in names:
                    errors[path] = f"Unknown field; known: {', '.join(names)}."
                elif index is None:
                    if name in required:
                        errors[path] = "This field is required."
                elif not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= 200:
                    errors[path] = "Must be a column index from 0 to 200 (or null for optional fields)."
                elif index in seen:
                    errors[path] = f"Column {index} is already used by {seen[index]}."
                else:
                    seen[index] = name
            for name in required:
                if name not in cols:
                    errors[f"columns.{ftype}.{name}"] = "This field is required."
    cleaning = cfg["cleaning"]
    if not isinstance(cleaning, dict):
        errors["cleaning"] = "Must be an object."
    else:
        for key in cleaning:
            if key not in CLEANING_KEYS:
                errors[f"cleaning.{key}"] = f"Unknown rule. Known: {', '.join(sorted(CLEANING_KEYS))}."
        prefixes = cleaning.get("strip_item_prefixes", [])
        if not isinstance(prefixes, list) or not all(isinstance(p, str) and 0 < len(p) <= 20 for p in prefixes):
            errors["cleaning.strip_item_prefixes"] = "Must be a list of short non-empty strings."
        for key in ("strip_leading_zeros", "uppercase_item_code"):
            if not isinstance(cleaning.get(key, False), bool):
                errors[f"cleaning.{key}"] = "Must be true or false."
        mapping = cleaning.get("payment_method_map", {})
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= 40 for k, v in mapping.items()
        ):
            errors["cleaning.payment_method_map"] = "Must map codes to names (strings up to 40 characters)."
    return errors
