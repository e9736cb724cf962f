"""An unprivileged host uid of its own for each run of a root worker.

A root worker does not hand root to the sandbox: every process of a run, bwrap's
own included, runs as an unprivileged host uid of its own (SCRIPTS_RUNNER_RUN_UIDS),
set by util-linux `setpriv` on the exec chain. bwrap then creates the run's user
namespace itself (uid 1000 inside = that host uid), which is what `--disable-userns`
needs. That uid cannot reach the interpreter and packages where root keeps them
(e.g. /root/.pyenv, mode 0700) nor the run directory; see `mount_view` for how it
reads them. See README "Unprivileged".
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
from dataclasses import dataclass

from scripts_runner import conf
from scripts_runner.sandbox.launch import SandboxUnavailable
from scripts_runner.sandbox.process_tree import kill_until_gone

#: Host directory of the per-run uid locks and of the view's mount point.
STATE_DIR = "/run/scripts-runner"


@dataclass
class RunUser:
    uid: int
    lock_fd: int


def _uid_processes(uid: int) -> list[int]:
    """Pids of every live (not zombie) process whose real uid is `uid`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as fh:
                zombie = False
                for line in fh:
                    if line.startswith(b"State:"):
                        zombie = line.split()[1] in (b"Z", b"X")
                    elif line.startswith(b"Uid:"):
                        if int(line.split()[1]) == uid and not zombie:
                            found.append(int(name))
                        break
        except (OSError, ValueError, IndexError):
            continue
    return found


def uid_kill_all(uid: int) -> None:
    """SIGKILL every process of a run uid (unsandboxed runs have no pid namespace to take them)."""
    kill_until_gone(lambda: _uid_processes(uid), rounds=5)


def run_user_acquire() -> RunUser | None:
    """A host uid no other live run has (held by a lock file until `release`); None unless root."""
    if os.geteuid() != 0:
        return None  # the worker's own uid is already unprivileged; it cannot switch anyway
    first, last = conf.RUN_UIDS
    lock_dir = os.path.join(STATE_DIR, "uids")
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    count = last - first + 1
    start = random.randrange(count)
    for i in range(count):
        uid = first + (start + i) % count
        fd = os.open(os.path.join(lock_dir, str(uid)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if os.pread(fd, 1, 0):
            # The last holder was killed during an unsandboxed run: its processes may be left.
            uid_kill_all(uid)
            os.ftruncate(fd, 0)
        return RunUser(uid=uid, lock_fd=fd)
    raise SandboxUnavailable(f"all {count} run uids are in use (SCRIPTS_RUNNER_RUN_UIDS)")


def setpriv_argv(user: RunUser | None) -> list[str]:
    if user is None:
        return []
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    return [setpriv, f"--reuid={user.uid}", f"--regid={user.uid}", "--clear-groups", "--no-new-privs", "--"]
