"""The run's memory cgroup: where it can be created on this host, its limit, and its OOM kills.

RLIMIT_AS bounds each process's address space; it cannot bound the run as a
whole (N children each under the limit) and it counts mappings, not memory.
Where the kernel's memory controller is writable, each run also gets its own
memory cgroup: v2 `memory.max` + `memory.swap.max = 0` (+ `memory.oom.group`),
v1 `memory.limit_in_bytes` + `memory.memsw.limit_in_bytes`. The kernel's OOM
killer acts when the run's resident memory (all its processes, tmpfs pages
included) passes the limit; `oom_kill` in `memory.events` (v2) or
`memory.oom_control` (v1) tells the runner, which ends the run "out of memory".
"""

from __future__ import annotations

import functools
import logging
import os

from scripts_runner import conf
from scripts_runner.sandbox.cgroup_fs import cgroup_mounts, cgroup_sweep, own_cgroup, read_text, write_text
from scripts_runner.sandbox.launch import Launch

logger = logging.getLogger(__name__)

#: Why the memory cgroup is (not) used on this host — shown by the bench and in logs.
memory_cgroup_status: dict[str, str] = {"state": "not probed", "reason": ""}


def _v2_enable_memory(root: str) -> str:
    """Let `root`'s children use the memory (and pids) controller; '' when done, else why not."""
    parent = os.path.dirname(root.rstrip("/"))
    try:
        if "memory" not in read_text(os.path.join(root, "cgroup.controllers")).split():
            # The parent must hand the controller down first. cgroup v2 refuses (EBUSY) when the
            # parent holds processes itself, unless it is the root cgroup ("no internal processes").
            try:
                write_text(os.path.join(parent, "cgroup.subtree_control"), "+memory")
            except OSError as exc:
                return (f"cannot enable the memory controller in {parent}/cgroup.subtree_control ({exc.strerror}); "
                        f"on cgroup v2 a cgroup that holds processes (e.g. the worker's own service cgroup) cannot "
                        f"give controllers to its children: run the worker in a leaf of a delegated subtree and "
                        f"point SCRIPTS_RUNNER_MEMORY_CGROUP at a sibling directory")
        wanted = [c for c in ("memory", "pids", "cpu") if c in read_text(os.path.join(root, "cgroup.controllers")).split()]
        if "memory" not in wanted:
            return f"the memory controller is not available in {root}"
        enabled = read_text(os.path.join(root, "cgroup.subtree_control")).split()
        for name in wanted:
            if name not in enabled:
                write_text(os.path.join(root, "cgroup.subtree_control"), f"+{name}")
    except OSError as exc:
        return f"cannot enable the memory controller for {root}: {exc}"
    return ""


def _memory_root_candidate() -> tuple[str, int] | tuple[None, str]:
    setting = conf.MEMORY_CGROUP
    if not setting:
        return None, "off (SCRIPTS_RUNNER_MEMORY_CGROUP is empty)"
    if setting != "auto":
        try:
            os.makedirs(setting, exist_ok=True)
        except OSError as exc:
            return None, f"cannot create {setting}: {exc}"
        return setting, 2 if os.path.exists(os.path.join(setting, "cgroup.controllers")) else 1
    v2, v1_memory = cgroup_mounts()
    if v2 is not None:
        own = own_cgroup(None)
        if own is not None:
            base = os.path.normpath(v2 + own)
            try:
                available = read_text(os.path.join(base, "cgroup.controllers")).split()
            except OSError:
                available = []
            if "memory" in available:
                return os.path.join(base, "scripts_runner"), 2
    if v1_memory is not None:
        own = own_cgroup("memory")
        if own is not None:
            # Below the worker's own memory cgroup: the runs stay inside whatever limit the
            # worker itself runs under (hierarchical accounting), nothing is moved out of it.
            return os.path.join(os.path.normpath(v1_memory + own), "scripts_runner"), 1
    return None, "no writable memory controller (neither cgroup v2 with `memory` in cgroup.controllers nor a v1 memory hierarchy)"


@functools.lru_cache(maxsize=1)
def memory_cgroup_root() -> tuple[str, int] | None:
    """(directory under which run memory cgroups are created, cgroup version), or None (rlimit only)."""
    root, version = _memory_root_candidate()
    if root is None:
        memory_cgroup_status.update(state="unavailable", reason=str(version))
        return None
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        memory_cgroup_status.update(state="unavailable", reason=f"cannot create {root}: {exc}")
        return None
    if version == 2:
        problem = _v2_enable_memory(root)
        if problem:
            memory_cgroup_status.update(state="unavailable", reason=problem)
            logger.info("memory cgroup not used: %s", problem)
            return None
    elif not os.access(os.path.join(root, "memory.limit_in_bytes"), os.W_OK):
        memory_cgroup_status.update(state="unavailable", reason=f"{root}/memory.limit_in_bytes is not writable")
        return None
    cgroup_sweep(root)
    memory_cgroup_status.update(state="enabled", reason=f"cgroup v{version} under {root}")
    return root, version


def memory_limit_write(path: str, version: int, limit: int) -> None:
    if version == 2:
        write_text(os.path.join(path, "memory.max"), str(limit))
        for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
            try:  # absent without swap accounting / on old kernels: the main limit still holds
                write_text(os.path.join(path, name), value)
            except OSError:
                pass
    else:
        write_text(os.path.join(path, "memory.limit_in_bytes"), str(limit))
        try:  # memory + swap; needs swap accounting, and must not be below limit_in_bytes
            write_text(os.path.join(path, "memory.memsw.limit_in_bytes"), str(limit))
        except OSError:
            pass


def oom_kills(launch: Launch) -> int:
    """How many processes of the run the kernel's OOM killer has killed (0 without a memory cgroup)."""
    path = launch.memory_cgroup
    if not path:
        return 0
    name = "memory.events" if launch.memory_cgroup_version == 2 else "memory.oom_control"
    try:
        text = read_text(os.path.join(path, name))
    except OSError:
        return 0
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
