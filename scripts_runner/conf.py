"""Settings of the script runner, read from the environment (documented in README.md)."""

from pathlib import Path

import environ
from django.conf import settings

_env = environ.Env()


def _get(name: str, cast, default):
    """Django settings win over the environment (tests override them)."""
    if hasattr(settings, name):
        return getattr(settings, name)
    return cast(name, default=default)


def max_script_bytes() -> int:
    return _get("SCRIPTS_RUNNER_MAX_SCRIPT_BYTES", _env.int, 1024 * 1024)


def require_run_permission() -> bool:
    return _get("SCRIPTS_RUNNER_REQUIRE_RUN_PERMISSION", _env.bool, True)


def allow_unsandboxed() -> bool:
    return _get("SCRIPTS_RUNNER_ALLOW_UNSANDBOXED", _env.bool, False)


def bwrap_path() -> str:
    return _get("SCRIPTS_RUNNER_BWRAP", _env.str, "")


def run_root() -> Path:
    default = str(Path(settings.VAR_DIR) / "scripts_runner" / "runs")
    return Path(_get("SCRIPTS_RUNNER_RUN_ROOT", _env.str, default))


def wall_seconds() -> float:
    return _get("SCRIPTS_RUNNER_WALL_SECONDS", _env.float, 3600.0)


def cpu_seconds() -> int:
    return _get("SCRIPTS_RUNNER_CPU_SECONDS", _env.int, 600)


def memory_bytes() -> int:
    return _get("SCRIPTS_RUNNER_MEMORY_BYTES", _env.int, 2 * 1024**3)


def open_files() -> int:
    return _get("SCRIPTS_RUNNER_OPEN_FILES", _env.int, 256)


def processes() -> int:
    return _get("SCRIPTS_RUNNER_PROCESSES", _env.int, 64)


def file_bytes() -> int:
    return _get("SCRIPTS_RUNNER_FILE_BYTES", _env.int, 100 * 1024**2)


def tmp_bytes() -> int:
    return _get("SCRIPTS_RUNNER_TMP_BYTES", _env.int, 64 * 1024**2)


def output_bytes() -> int:
    return _get("SCRIPTS_RUNNER_OUTPUT_BYTES", _env.int, 10 * 1024**2)


def line_bytes() -> int:
    return _get("SCRIPTS_RUNNER_LINE_BYTES", _env.int, 64 * 1024)


def flush_seconds() -> float:
    return _get("SCRIPTS_RUNNER_FLUSH_SECONDS", _env.float, 0.2)


def flush_lines() -> int:
    return _get("SCRIPTS_RUNNER_FLUSH_LINES", _env.int, 500)


def cancel_poll_seconds() -> float:
    return _get("SCRIPTS_RUNNER_CANCEL_POLL_SECONDS", _env.float, 0.05)


def kill_grace_seconds() -> float:
    return _get("SCRIPTS_RUNNER_KILL_GRACE_SECONDS", _env.float, 0.3)


def pids_cgroup() -> str:
    """"auto" (find a writable pids cgroup), "" (off) or a cgroup directory."""
    return _get("SCRIPTS_RUNNER_PIDS_CGROUP", _env.str, "auto")


def memory_cgroup() -> str:
    """"auto" (a memory cgroup per run where the controller is writable), "" (off: rlimit only) or a directory."""
    return _get("SCRIPTS_RUNNER_MEMORY_CGROUP", _env.str, "auto")


def disk_bytes() -> int:
    """Size of the run directory (`/sandbox`, a tmpfs inside the sandbox); 0 = the host directory, no limit."""
    return _get("SCRIPTS_RUNNER_DISK_BYTES", _env.int, 256 * 1024**2)


def pasta_path() -> str:
    """Path of pasta (Debian's passt) for networked runs; "" = look it up on PATH."""
    return _get("SCRIPTS_RUNNER_PASTA", _env.str, "")


def network_uid() -> int:
    """Host uid that owns a networked run's namespaces and runs its pasta (nothing else should use it).

    Not nobody (65534) by default: a process running as this uid in the host's user namespace holds
    every capability over those namespaces, and nobody is what other daemons (and the unsandboxed
    fallback) tend to run as.
    """
    return _get("SCRIPTS_RUNNER_NETWORK_UID", _env.int, 65533)


def shm_bytes() -> int:
    """Size of the sandbox's /dev/shm tmpfs (the rest of /dev is read-only)."""
    return _get("SCRIPTS_RUNNER_SHM_BYTES", _env.int, 64 * 1024**2)


def cpu_quota() -> float:
    """CPU of the whole run, in cores (cgroup CPU bandwidth quota); 0 = no quota."""
    return _get("SCRIPTS_RUNNER_CPU_QUOTA", _env.float, 1.0)


def run_uids() -> tuple[int, int]:
    """First and last host uid given to runs (one per live run) when the worker runs as root."""
    value = _get("SCRIPTS_RUNNER_RUN_UIDS", _env.str, "2000000000-2000000999")
    first, _, last = str(value).partition("-")
    first_uid, last_uid = int(first), int(last or first)
    if first_uid <= 0 or last_uid < first_uid:
        raise ValueError("SCRIPTS_RUNNER_RUN_UIDS must be a range FIRST-LAST of uids above 0")
    return first_uid, last_uid


def log_bytes_per_user() -> int:
    """Stored log bytes kept per user; older runs' logs are removed first. 0 = no limit."""
    return _get("SCRIPTS_RUNNER_LOG_BYTES_PER_USER", _env.int, 200 * 1024**2)
