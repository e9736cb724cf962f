"""The embedded mode's secret key: random, made once, kept under `var/` (mode 0600).

Imported by the settings module, so it must not import Django models or settings.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def generated_secret_key(path: Path | None) -> str:
    """The key stored at `path`, created there on first use; a fresh key when `path` is None."""
    if path is None:
        return secrets.token_urlsafe(50)
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    if key:
        return key
    key = secrets.token_urlsafe(50)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes starting at once never write two keys; the loser reads the winner's.
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, path)
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        os.unlink(temporary)
    return key
