"""What one run is started with and holds until it is released: its limits and its launch."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scripts_runner import conf

if TYPE_CHECKING:
    from scripts_runner import network as netns
    from scripts_runner.sandbox.run_uid import RunUser


class SandboxUnavailable(Exception):
    """The sandbox cannot start on this host."""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int
    memory_bytes: int
    open_files: int
    processes: int
    file_bytes: int
    tmp_bytes: int
    disk_bytes: int = 0
    shm_bytes: int = 64 * 1024**2
    #: CPU time per wall-clock second of the whole run, in cores (cgroup CPU quota); 0 = no quota.
    cpu_quota: float = 0.0

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            cpu_seconds=conf.CPU_SECONDS,
            memory_bytes=conf.MEMORY_BYTES,
            open_files=conf.OPEN_FILES,
            processes=conf.PROCESSES,
            file_bytes=conf.FILE_BYTES,
            tmp_bytes=conf.TMP_BYTES,
            disk_bytes=conf.DISK_BYTES,
            shm_bytes=conf.SHM_BYTES,
            cpu_quota=conf.CPU_QUOTA,
        )


@dataclass
class Launch:
    """What is needed to start one run: argv for Popen, plus clean-up state."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    sandboxed: bool
    limits: Limits
    cgroup: str | None = None
    #: The run's memory cgroup (the same directory as `cgroup` on cgroup v2), or None (rlimit only).
    memory_cgroup: str | None = None
    memory_cgroup_version: int = 0
    #: The run's CPU cgroup (v1 `cpu` hierarchy, or the run's v2 directory), or None (no quota).
    cpu_cgroup: str | None = None
    #: The unprivileged host uid the run's processes have (None: the worker's own uid, not root).
    run_user: RunUser | None = None
    #: Data handed to bwrap through a fresh descriptor at each start: `argv` holds `fd_slot(name)` for each.
    fd_data: dict[str, bytes] = field(default_factory=dict)
    #: Read end of bwrap's `--json-status-fd` pipe of the last start: whether the sandbox reached the script.
    status_fd: int | None = None
    extra: dict = field(default_factory=dict)
    #: The run has network: `start()` gives it its own namespace (netns, network.py), `network_stop()` removes it.
    network: bool = False
    run_network: netns.RunNetwork | None = None

    def command(self, argv: list[str] | None = None) -> list[str]:
        """argv to execute (`argv`: this launch's, with its descriptors): in the run's own network namespace
        when it has network."""
        argv = self.argv if argv is None else argv
        if self.run_network is not None:
            return [*self.run_network.enter_argv(), *argv]
        return argv

    def cgroup_dirs(self) -> list[str]:
        """Every cgroup directory of the run, each once (v2: one directory holds all limits)."""
        dirs: list[str] = []
        for path in (self.cgroup, self.memory_cgroup, self.cpu_cgroup):
            if path and path not in dirs:
                dirs.append(path)
        return dirs

    def status_close(self) -> None:
        """Close the read end of the last start's status pipe, if one is open."""
        if self.status_fd is not None:
            os.close(self.status_fd)
            self.status_fd = None


STATUS_SLOT = "status"


def fd_slot(name: str) -> str:
    """Placeholder in a launch's argv for a descriptor `start` creates (see `Launch.fd_data`)."""
    return f"\x00fd:{name}"
