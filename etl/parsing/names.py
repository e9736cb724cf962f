"""POS file names: which file type a name is, and whether it is safe to store under."""

from __future__ import annotations

import re

from etl.parsing.config import FILE_TYPES


def filetype_of(name: str) -> str | None:
    lowered = name.lower()
    for ftype in FILE_TYPES:
        if ftype in lowered:
            return ftype
    return None


SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


def is_safe_name(name: str) -> bool:
    return bool(SAFE_NAME.match(name)) and ".." not in name
