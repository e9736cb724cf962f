"""Settings of the script runner (core.appconf: read from the environment by config/settings.py as
`SCRIPTS_RUNNER_<NAME>`, read here when used). Documented in scripts_runner/README.md.
"""

from pathlib import Path

from core.appconf import AppSettings, Setting


def _uid_range(value) -> tuple[int, int]:
    if isinstance(value, tuple):
        return value
    first, _, last = str(value).partition("-")
    first_uid, last_uid = int(first), int(last or first)
    if first_uid <= 0 or last_uid < first_uid:
        raise ValueError("SCRIPTS_RUNNER_RUN_UIDS must be a range FIRST-LAST of uids above 0")
    return first_uid, last_uid


SETTINGS = AppSettings(
    "SCRIPTS_RUNNER",
    MAX_SCRIPT_BYTES=Setting("int", 1024 * 1024),
    REQUIRE_RUN_PERMISSION=Setting("bool", True),
    ALLOW_UNSANDBOXED=Setting("bool", False),
    BWRAP=Setting("str", ""),
    RUN_ROOT=Setting("str", lambda var_dir: str(var_dir / "scripts_runner" / "runs"), clean=Path),
    WALL_SECONDS=Setting("float", 3600.0),
    CPU_SECONDS=Setting("int", 600),
    MEMORY_BYTES=Setting("int", 2 * 1024**3),
    OPEN_FILES=Setting("int", 256),
    PROCESSES=Setting("int", 64),
    FILE_BYTES=Setting("int", 100 * 1024**2),
    TMP_BYTES=Setting("int", 64 * 1024**2),
    OUTPUT_BYTES=Setting("int", 10 * 1024**2),
    LINE_BYTES=Setting("int", 64 * 1024),
    FLUSH_SECONDS=Setting("float", 0.2),
    FLUSH_LINES=Setting("int", 500),
    CANCEL_POLL_SECONDS=Setting("float", 0.05),
    KILL_GRACE_SECONDS=Setting("float", 0.3),
    # "auto" (find a writable pids cgroup), "" (off) or a cgroup directory.
    PIDS_CGROUP=Setting("str", "auto"),
    # "auto" (a memory cgroup per run where the controller is writable), "" (off: rlimit only) or a directory.
    MEMORY_CGROUP=Setting("str", "auto"),
    # Size of the run directory (`/sandbox`, a tmpfs inside the sandbox); 0 = the host directory, no limit.
    DISK_BYTES=Setting("int", 256 * 1024**2),
    # Path of pasta (Debian's passt) for networked runs; "" = look it up on PATH.
    PASTA=Setting("str", ""),
    # Host uid that owns a networked run's namespaces and runs its pasta (nothing else should use it).
    # Not nobody (65534) by default: a process running as this uid in the host's user namespace holds
    # every capability over those namespaces, and nobody is what other daemons (and the unsandboxed
    # fallback) tend to run as.
    NETWORK_UID=Setting("int", 65533),
    # Size of the sandbox's /dev/shm tmpfs (the rest of /dev is read-only).
    SHM_BYTES=Setting("int", 64 * 1024**2),
    # CPU of the whole run, in cores (cgroup CPU bandwidth quota); 0 = no quota.
    CPU_QUOTA=Setting("float", 1.0),
    # First and last host uid given to runs (one per live run) when the worker runs as root.
    RUN_UIDS=Setting("str", "2000000000-2000000999", clean=_uid_range),
    # Stored log bytes kept per user; older runs' logs are removed first. 0 = no limit.
    LOG_BYTES_PER_USER=Setting("int", 200 * 1024**2),
)
__getattr__ = SETTINGS.get
