"""Checks on what users send: script names and code, run arguments and environment."""

from __future__ import annotations

import re
import shlex

from django.core.exceptions import ValidationError

from scripts_runner import conf

NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,96}\.py$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
RESERVED_ENV = {"PATH", "HOME", "TMPDIR", "PYTHONIOENCODING"}
MAX_ARGS = 50
MAX_ENV = 50
MAX_VALUE = 4096


def validate_script_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the script a name ending in .py."})
    if not NAME_RE.match(name):
        raise ValidationError(
            {"name": "The name must end in .py, be at most 100 characters, and use only letters, digits, "
                     "'_', '-' and '.' (no folders)."}
        )
    return name


def validate_script_code(code: bytes, *, name: str = "script.py") -> str:
    """The code as text; raises with the line and column of a syntax error."""
    limit = conf.MAX_SCRIPT_BYTES
    if len(code) > limit:
        raise ValidationError({"file": f"The script is {len(code):,} bytes; the limit is {limit:,} bytes."})
    if not code.strip():
        raise ValidationError({"file": "The script is empty."})
    try:
        text = code.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError({"file": f"The script is not UTF-8 text (invalid byte at offset {exc.start})."})
    if "\x00" in text:
        raise ValidationError({"file": "The script contains a NUL byte; is it a binary file?"})
    try:
        # Only parses and compiles to bytecode; nothing is executed.
        compile(text, name, "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f"line {exc.lineno}, column {exc.offset}" if exc.lineno else "unknown position"
        raise ValidationError({"file": f"Syntax error at {where}: {exc.msg}."})
    except (RecursionError, MemoryError):
        raise ValidationError({"file": "The script is nested too deeply to compile."})
    except ValueError as exc:
        raise ValidationError({"file": f"The script cannot be compiled: {exc}."})
    return text


def validate_args(args) -> list[str]:
    if args is None:
        return []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ValidationError({"args": "Arguments must be a list of strings."})
    if len(args) > MAX_ARGS:
        raise ValidationError({"args": f"At most {MAX_ARGS} arguments."})
    for arg in args:
        if len(arg) > MAX_VALUE or "\x00" in arg:
            raise ValidationError({"args": f"Each argument must be at most {MAX_VALUE} characters, without NUL."})
    return list(args)


def parse_args_text(text: str) -> list[str]:
    try:
        return validate_args(shlex.split(text or ""))
    except ValueError as exc:
        raise ValidationError({"args": f"Arguments could not be split like a shell would: {exc}."})


def validate_env(env) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ValidationError({"env": "Environment must be an object of string names to string values."})
    if len(env) > MAX_ENV:
        raise ValidationError({"env": f"At most {MAX_ENV} environment variables."})
    for key, value in env.items():
        if not ENV_NAME_RE.match(key):
            raise ValidationError({"env": f"'{key[:40]}' is not a valid variable name (letters, digits, '_')."})
        if key in RESERVED_ENV or key.startswith("LD_"):
            raise ValidationError({"env": f"'{key}' is set by the platform and cannot be changed."})
        if len(value) > MAX_VALUE or "\x00" in value:
            raise ValidationError({"env": f"The value of {key} must be at most {MAX_VALUE} characters, without NUL."})
    return dict(env)


def parse_env_text(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ValidationError({"env": f"Line {number}: write NAME=value."})
        key, value = line.split("=", 1)
        env[key.strip()] = value
    return validate_env(env)
