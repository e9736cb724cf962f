"""The processes of a run as a tree: finding them, signalling them, killing them until none is left."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable


def kill_until_gone(list_pids: Callable[[], list[int]], *, rounds: int) -> None:
    """SIGKILL every pid `list_pids` names, and again, until it names none (at most `rounds` times)."""
    for _ in range(rounds):
        pids = list_pids()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (by parent links in /proc)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def signal_tree(proc: subprocess.Popen, sig: int, *, include_root: bool) -> None:
    targets = descendants(proc.pid)
    if include_root:
        targets.append(proc.pid)
    for pid in targets:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    if not include_root:
        return
    try:  # the unsandboxed fallback runs in its own process group
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
