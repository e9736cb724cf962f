"""The bubblewrap command line of a sandboxed run: its mounts, namespaces and environment."""

from __future__ import annotations

import os
from pathlib import Path

from scripts_runner import network as netns
from scripts_runner.sandbox.host_facts import python_layout
from scripts_runner.sandbox.launch import STATUS_SLOT, Limits, fd_slot
from scripts_runner.sandbox.mount_view import View, in_view

SANDBOX_DIR = "/sandbox"
VENV_DIR = "/venv"


def bwrap_argv(*, bwrap: str, run_dir: Path, network: bool, limits: Limits, env: dict[str, str],
                script_name: str = "", view: View | None = None) -> list[str]:
    layout = python_layout()
    base, version = layout["base"], layout["version"]
    argv = [
        bwrap,
        "--unshare-all",
        "--unshare-user",
        # No user namespaces inside (bwrap makes a second, final one where creating more is refused).
        "--disable-userns",
        "--uid", "1000",
        "--gid", "1000",
        "--hostname", "sandbox",
        "--die-with-parent",
        "--new-session",
        "--cap-drop", "ALL",
        "--ro-bind", "/usr", "/usr",
    ]
    for name in ("bin", "lib", "lib64", "sbin"):
        host = Path("/") / name
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), f"/{name}"]
    if not base.startswith("/usr/"):
        # Inside, the interpreter keeps its own path; on the host the run's uid reads it through the view.
        argv += ["--ro-bind", view.python if view else base, base]
    if layout["site_packages"]:
        # The platform's packages, presented as a virtualenv so `import pandas` works
        # without the sandbox seeing the project directory that holds the venv.
        argv += [
            "--dir", f"{VENV_DIR}/bin",
            "--symlink", layout["interpreter"], f"{VENV_DIR}/bin/python",
            "--ro-bind", view.sandbox_pyvenv if view else str(run_dir / "pyvenv.cfg"), f"{VENV_DIR}/pyvenv.cfg",
            "--ro-bind", view.site_packages if view else layout["site_packages"],
            f"{VENV_DIR}/lib/{version}/site-packages",
        ]
        python = f"{VENV_DIR}/bin/python"
    else:
        python = layout["interpreter"]
    argv += [
        "--proc", "/proc",
        # bwrap's /dev is a tmpfs without a size: /dev/shm gets its own sized tmpfs and the rest
        # of /dev is made read-only (device nodes stay usable: they are bind mounts of their own).
        "--dev", "/dev",
        "--size", str(limits.shm_bytes), "--perms", "1777", "--tmpfs", "/dev/shm",
        "--remount-ro", "/dev",
        "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
    ]
    if limits.disk_bytes > 0 and script_name:
        # The run directory is a size-limited tmpfs: the total the run writes there is capped
        # (ENOSPC → end reason `disk_limit`). Nothing is kept from it after the run (as before),
        # so only the script itself comes from the host: copied in by bwrap from a descriptor
        # and bound read-only (no host path involved).
        argv += [
            "--size", str(limits.disk_bytes), "--tmpfs", SANDBOX_DIR,
            "--ro-bind-data", fd_slot("script"), f"{SANDBOX_DIR}/{script_name}",
        ]
    else:
        argv += ["--bind", in_view(view, run_dir / "work"), SANDBOX_DIR]
    argv += ["--chdir", SANDBOX_DIR]
    if network:
        # Keep the namespace bwrap is started in: the run's own one (network.py), never the host's.
        argv.append("--share-net")
        for host_path, path in netns.sandbox_files(run_dir):
            argv += ["--ro-bind", in_view(view, host_path), path]
        for path in ("/etc/ssl", "/etc/ca-certificates", "/etc/nsswitch.conf"):
            if os.path.exists(path):
                argv += ["--ro-bind", path, path]
    # The root tmpfs bwrap builds the tree on is writable until made read-only.
    argv += ["--remount-ro", "/", "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    argv += ["--seccomp", fd_slot("seccomp"), "--json-status-fd", fd_slot(STATUS_SLOT)]
    argv += ["--", python]
    return argv


def base_env() -> dict[str, str]:
    return {
        "PATH": f"{VENV_DIR}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": SANDBOX_DIR,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
