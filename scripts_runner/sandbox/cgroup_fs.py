"""Reading and writing the kernel's cgroup file systems: where they are mounted, which cgroup this
process is in, and removing or emptying a run's cgroup directory."""

from __future__ import annotations

import logging
import os
import time

from scripts_runner.sandbox.process_tree import kill_until_gone

logger = logging.getLogger(__name__)


def read_text(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def write_text(path: str, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def cgroup_mounts(controller: str = "memory") -> tuple[str | None, str | None]:
    """(cgroup v2 mount point, cgroup v1 mount point of `controller`) from /proc/self/mountinfo."""
    v2 = v1 = None
    try:
        lines = read_text("/proc/self/mountinfo").splitlines()
    except OSError:
        return None, None
    for line in lines:
        head, _, tail = line.partition(" - ")
        fields, tail_fields = head.split(), tail.split()
        if len(fields) < 5 or len(tail_fields) < 3:
            continue
        fstype, options = tail_fields[0], tail_fields[2].split(",")
        if fstype == "cgroup2" and v2 is None:
            v2 = fields[4]
        elif fstype == "cgroup" and controller in options and v1 is None:
            v1 = fields[4]
    return v2, v1


def own_cgroup(controller: str | None) -> str | None:
    """This process's cgroup path: in the v1 hierarchy of `controller`, or (None) in the v2 one."""
    try:
        lines = read_text("/proc/self/cgroup").splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        number, controllers, path = parts
        if controller is None and number == "0" and controllers == "":
            return path
        if controller is not None and controller in controllers.split(","):
            return path
    return None


def is_v2(path: str) -> bool:
    """Whether a cgroup directory belongs to the v2 (unified) hierarchy."""
    return os.path.exists(os.path.join(path, "cgroup.controllers"))


def cgroup_sweep(root: str) -> None:
    """Remove empty run cgroups left behind by a crashed worker (only old ones: others may be starting)."""
    now = time.time()
    try:
        names = [n for n in os.listdir(root) if n.startswith("run-")]
    except OSError:
        return
    for name in names:
        path = os.path.join(root, name)
        try:
            if now - os.stat(path).st_mtime > 300:
                os.rmdir(path)
        except OSError:
            pass


def cgroup_remove(path: str | None) -> None:
    if not path:
        return
    for _ in range(250):  # processes killed by the OOM killer may take a moment to leave (v1: EBUSY until then)
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
    logger.warning("run cgroup %s still busy", path)


def cgroup_kill(path: str | None) -> None:
    """SIGKILL whatever is left in the run's cgroup (belt and braces)."""
    if path:
        kill_until_gone(lambda: _cgroup_pids(path), rounds=3)


def _cgroup_pids(path: str) -> list[int]:
    """The pids in a cgroup directory ([] once it cannot be read: removed, or never made)."""
    try:
        with open(os.path.join(path, "cgroup.procs")) as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []
