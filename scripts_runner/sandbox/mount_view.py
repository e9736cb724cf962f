"""The private mount namespace (the "view") where a run's uid reads the interpreter, packages and runs.

The worker builds it once (not visible to the host): the interpreter, the
platform's packages and the run root are bind mounted under VIEW_DIR, and the
exec chain enters it (`nsenter`) before dropping to the run's uid (`run_uid`).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from scripts_runner import conf
from scripts_runner.sandbox.host_facts import python_layout
from scripts_runner.sandbox.launch import SandboxUnavailable
from scripts_runner.sandbox.run_uid import STATE_DIR, RunUser

logger = logging.getLogger(__name__)

VIEW_DIR = f"{STATE_DIR}/view"


@dataclass
class View:
    """The private mount namespace where the run uid can read the interpreter, packages and runs."""

    holder: subprocess.Popen
    runs: str  # the run root as seen in the view
    python: str  # the interpreter's installation (sys.base_prefix) in the view
    site_packages: str  # the platform's packages in the view ("" outside a virtualenv)
    venv_python: str  # an interpreter of a virtualenv over those packages, usable in the view
    sandbox_pyvenv: str  # pyvenv.cfg of the sandbox's /venv

    def nsenter(self, *, wd: str | None = None, user: RunUser | None = None) -> list[str]:
        """Enter the view; with `user`, also drop to its uid and gid without supplementary groups."""
        argv = [shutil.which("nsenter") or "/usr/bin/nsenter", f"--mount=/proc/{self.holder.pid}/ns/mnt"]
        if user is not None:
            argv += [f"--setuid={user.uid}", f"--setgid={user.uid}"]
        argv.append("--")
        if wd:  # nsenter's own --wd opens the directory before it enters the namespace
            argv += ["/bin/sh", "-c", 'cd "$0" && exec "$@"', wd]
        return argv


_VIEW_SCRIPT = r"""
set -e
V=$1 BASE=$2 SITE=$3 RUNS=$4 EXE=$5 VER=$6 FULLVER=$7 HOME_IN=$8
mount -t tmpfs -o mode=0755,size=1m scripts-runner "$V"
mkdir -p "$V/python" "$V/runs" "$V/venv/bin"
mount --bind "$BASE" "$V/python"
mount --bind "$RUNS" "$V/runs"
if [ -n "$SITE" ]; then
  mkdir -p "$V/venv/lib/$VER/site-packages"
  mount --bind "$SITE" "$V/venv/lib/$VER/site-packages"
fi
ln -s "$V/python/$EXE" "$V/venv/bin/python"
printf 'home = %s\ninclude-system-site-packages = false\nversion = %s\n' "$(dirname "$V/python/$EXE")" "$FULLVER" > "$V/venv/pyvenv.cfg"
printf 'home = %s\ninclude-system-site-packages = false\nversion = %s\n' "$HOME_IN" "$FULLVER" > "$V/sandbox-pyvenv.cfg"
echo ready
read -r _ || true
"""

_view_lock = threading.Lock()
_views: dict[tuple, View] = {}


def view() -> View | None:
    """The view for the current run root (built once per worker process); None unless root."""
    if os.geteuid() != 0:
        return None
    layout = python_layout()
    runs = os.path.realpath(conf.RUN_ROOT)
    key = (layout["base"], layout["site_packages"], runs)
    with _view_lock:
        current = _views.get(key)
        if current is not None and current.holder.poll() is None:
            return current
        for old in _views.values():  # another run root (tests): let the old holder end
            _view_close(old)
        _views.clear()
        exe = os.path.relpath(layout["interpreter"], layout["base"])
        if exe.startswith(".."):
            raise SandboxUnavailable("the interpreter is not inside its installation prefix")
        os.makedirs(runs, exist_ok=True)
        mode = os.stat(runs).st_mode & 0o7777
        if mode & 0o011 != 0o011:  # run uids must pass through it (not list it) to their own directory
            os.chmod(runs, mode | 0o011)
        os.makedirs(VIEW_DIR, mode=0o755, exist_ok=True)
        unshare = shutil.which("unshare") or "/usr/bin/unshare"
        info = sys.version_info
        holder = subprocess.Popen(
            [unshare, "--mount", "--propagation", "private", "/bin/sh", "-c", _VIEW_SCRIPT, "sh", VIEW_DIR,
             layout["base"], layout["site_packages"], runs, exe, layout["version"],
             f"{info.major}.{info.minor}.{info.micro}", os.path.dirname(layout["interpreter"])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
            start_new_session=True,
        )
        line = holder.stdout.readline()
        if line.strip() != b"ready":
            holder.kill()
            _, err = holder.communicate()
            logger.warning("could not build the run view: %s", err.decode(errors="replace").strip())
            raise SandboxUnavailable("the runs' view of the interpreter could not be set up (mount namespace)")
        site = f"{VIEW_DIR}/venv/lib/{layout['version']}/site-packages" if layout["site_packages"] else ""
        built = View(holder=holder, runs=f"{VIEW_DIR}/runs", python=f"{VIEW_DIR}/python", site_packages=site,
                     venv_python=f"{VIEW_DIR}/venv/bin/python", sandbox_pyvenv=f"{VIEW_DIR}/sandbox-pyvenv.cfg")
        _views[key] = built
        return built


def _view_close(current: View) -> None:
    try:
        current.holder.stdin.close()
        current.holder.wait(timeout=5)
    except Exception:  # already gone
        current.holder.kill()


def in_view(current: View | None, host_path: Path) -> str:
    """Where a path under the run root is in the view (the host path itself without a view)."""
    if current is None:
        return str(host_path)
    rel = os.path.relpath(os.path.realpath(host_path), os.path.realpath(conf.RUN_ROOT))
    if rel.startswith(".."):
        raise SandboxUnavailable("run directories must be inside the run root")
    return os.path.join(current.runs, rel)
