"""The run's CPU quota: where its CPU cgroup can be created on this host, and the quota written there.

RLIMIT_CPU bounds each process's CPU seconds; a run of many processes can still
keep every core of the host busy. Each run gets a CPU bandwidth quota for all its
processes together (SCRIPTS_RUNNER_CPU_QUOTA cores): v2 `cpu.max` in the run's
cgroup, v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us` in `<v1 cpu mount>/<the worker's
cpu cgroup>/scripts_runner/run-…` (hybrid hosts mount `cpu` separately, like memory).
"""

from __future__ import annotations

import functools
import logging
import os
import uuid

from scripts_runner.sandbox.cgroup_fs import (
    cgroup_mounts, cgroup_remove, cgroup_sweep, own_cgroup, read_text, write_text,
)
from scripts_runner.sandbox.cgroup_memory import memory_cgroup_root
from scripts_runner.sandbox.launch import Launch

logger = logging.getLogger(__name__)

CPU_PERIOD_US = 100_000

#: Why the CPU quota is (not) used on this host — shown by the bench and in logs.
cpu_cgroup_status: dict[str, str] = {"state": "not probed", "reason": ""}


@functools.lru_cache(maxsize=1)
def cpu_cgroup_root() -> tuple[str, int] | None:
    """(directory under which run CPU cgroups are created, cgroup version), or None (no quota)."""
    memory = memory_cgroup_root()
    if memory and memory[1] == 2:
        try:
            enabled = read_text(os.path.join(memory[0], "cgroup.subtree_control")).split()
        except OSError:
            enabled = []
        if "cpu" in enabled:
            cpu_cgroup_status.update(state="enabled", reason=f"cgroup v2 under {memory[0]}")
            return memory[0], 2
    _, v1_cpu = cgroup_mounts("cpu")
    own = own_cgroup("cpu") if v1_cpu else None
    if v1_cpu is None or own is None:
        cpu_cgroup_status.update(state="unavailable", reason="no writable cpu controller")
        return None
    root = os.path.join(os.path.normpath(v1_cpu + own), "scripts_runner")
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        cpu_cgroup_status.update(state="unavailable", reason=f"cannot create {root}: {exc.strerror}")
        return None
    if not os.access(os.path.join(root, "cpu.cfs_quota_us"), os.W_OK):
        cpu_cgroup_status.update(state="unavailable", reason=f"{root}/cpu.cfs_quota_us is not writable")
        return None
    cgroup_sweep(root)
    cpu_cgroup_status.update(state="enabled", reason=f"cgroup v1 under {root}")
    return root, 1


def _cpu_quota_write(path: str, version: int, cores: float) -> None:
    quota = max(1000, int(cores * CPU_PERIOD_US))
    if version == 2:
        write_text(os.path.join(path, "cpu.max"), f"{quota} {CPU_PERIOD_US}")
    else:
        write_text(os.path.join(path, "cpu.cfs_period_us"), str(CPU_PERIOD_US))
        write_text(os.path.join(path, "cpu.cfs_quota_us"), str(quota))


def cpu_cgroup_create(launch: Launch) -> None:
    launch.cpu_cgroup = None
    if launch.limits.cpu_quota <= 0:
        return
    root = cpu_cgroup_root()
    if root is None:
        return
    path, version = root
    if version == 2:
        if launch.memory_cgroup and launch.memory_cgroup_version == 2:
            try:
                _cpu_quota_write(launch.memory_cgroup, 2, launch.limits.cpu_quota)
                launch.cpu_cgroup = launch.memory_cgroup
            except OSError:
                logger.warning("could not set the CPU quota of %s", launch.memory_cgroup, exc_info=True)
        return
    path = os.path.join(path, f"run-{uuid.uuid4().hex[:12]}")
    try:
        os.mkdir(path)
        _cpu_quota_write(path, 1, launch.limits.cpu_quota)
    except OSError:
        logger.warning("could not set up the CPU cgroup %s; the run has no CPU quota", path, exc_info=True)
        cgroup_remove(path)
        return
    launch.cpu_cgroup = path
