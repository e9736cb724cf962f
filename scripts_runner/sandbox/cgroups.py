"""A run's cgroups together: its pids cgroup, and creating, emptying and removing all of them."""

from __future__ import annotations

import functools
import logging
import os
import uuid
from pathlib import Path

from scripts_runner import conf
from scripts_runner.sandbox.cgroup_cpu import cpu_cgroup_create
from scripts_runner.sandbox.cgroup_fs import cgroup_kill, cgroup_remove, cgroup_sweep, is_v2, write_text
from scripts_runner.sandbox.cgroup_memory import memory_cgroup_root, memory_limit_write
from scripts_runner.sandbox.launch import Launch, Limits

logger = logging.getLogger(__name__)


def _pids_cgroup_root() -> str | None:
    setting = conf.PIDS_CGROUP
    if not setting:
        return None
    candidates = [setting] if setting != "auto" else []
    if setting == "auto":
        unified = Path("/sys/fs/cgroup/cgroup.controllers")
        if unified.exists() and "pids" in unified.read_text().split():
            candidates.append("/sys/fs/cgroup/scripts_runner")
        candidates.append("/sys/fs/cgroup/pids/scripts_runner")
    for path in candidates:
        try:
            os.makedirs(path, exist_ok=True)
            if os.access(path, os.W_OK):
                return path
        except OSError:
            continue
    return None


@functools.lru_cache(maxsize=1)
def host_cgroup_root() -> str | None:
    root = _pids_cgroup_root()
    if root:
        cgroup_sweep(root)
    return root


def _pids_cgroup_create(root: str, limits: Limits) -> str | None:
    path = os.path.join(root, f"run-{uuid.uuid4().hex[:12]}")
    try:
        os.mkdir(path)
        with open(os.path.join(path, "pids.max"), "w") as fh:
            fh.write(str(limits.processes))
        return path
    except OSError:
        logger.warning("could not create pids cgroup under %s", root, exc_info=True)
        cgroup_remove(path)
        return None


def run_cgroups_create(launch: Launch) -> None:
    _pids_memory_cgroup_create(launch)
    cpu_cgroup_create(launch)


def _pids_memory_cgroup_create(launch: Launch) -> None:
    """The run's pids cgroup (`launch.cgroup`) and memory cgroup (`launch.memory_cgroup`), where possible.

    On cgroup v2 a process is in exactly one cgroup, so one directory carries
    both `pids.max` and `memory.max`; on v1 they are two directories in two
    hierarchies and the exec chain joins both.
    """
    limits = launch.limits
    launch.cgroup = launch.memory_cgroup = None
    launch.memory_cgroup_version = 0
    memory = memory_cgroup_root()
    pids_root = host_cgroup_root()
    if memory and memory[1] == 2 and pids_root and is_v2(pids_root) and pids_root != memory[0]:
        pids_root = None  # the v2 memory cgroup carries pids.max too
    if pids_root is not None:
        launch.cgroup = _pids_cgroup_create(pids_root, limits)
    if memory is None:
        return
    root, version = memory
    shared = version == 2 and launch.cgroup is not None and os.path.dirname(launch.cgroup) == root
    path = launch.cgroup if shared else os.path.join(root, f"run-{uuid.uuid4().hex[:12]}")
    try:
        if not shared:
            os.mkdir(path)
            if version == 2:
                try:
                    write_text(os.path.join(path, "pids.max"), str(limits.processes))
                except OSError:
                    pass
        memory_limit_write(path, version, limits.memory_bytes)
    except OSError:
        logger.warning("could not set up the memory cgroup %s; the address-space rlimit still applies", path,
                       exc_info=True)
        if not shared:
            cgroup_remove(path)
        return
    launch.memory_cgroup, launch.memory_cgroup_version = path, version
    if version == 2 and launch.cgroup is None:
        launch.cgroup = path


def cgroups_remove(launch: Launch) -> None:
    for path in launch.cgroup_dirs():
        cgroup_remove(path)


def cgroups_kill(launch: Launch) -> None:
    for path in launch.cgroup_dirs():
        cgroup_kill(path)
