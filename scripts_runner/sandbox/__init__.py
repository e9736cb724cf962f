"""Starting a script in a bubblewrap sandbox with resource limits, and stopping it.

The sandbox sees: /usr (read-only), the interpreter's installation and the
platform's installed packages (read-only, presented as a virtualenv at /venv),
the run's own directory at /sandbox (the only writable place besides a small
tmpfs /tmp and a sized /dev/shm), fresh /proc and a read-only /dev. Every
namespace is unshared (a networked run keeps the run's own network namespace
made by network.py, never the host's), no user
namespace can be made inside, a seccomp filter refuses the kernel interfaces a
script has no use for (`seccomp.py`), the environment is cleared, the script
gets a new session and dies with its parent. Under a root worker every process
of the run has an unprivileged host uid of its own (`run_uid`).

Killing the outer bwrap process kills the sandbox's pid-1 (`--die-with-parent`)
and with it, by the kernel, every process in the sandbox's pid namespace, even
ones that called `setsid()`.

The modules of this package, in the order a run meets them:

- `launch`: what a run starts with (`Limits`, `Launch`);
- `host_facts`, `host_probe`: what this host has, and whether a sandbox starts on it;
- `run_uid`, `mount_view`: the run's own unprivileged uid, and the mount namespace where it reads
  the interpreter;
- `bwrap`: the bubblewrap command line (mounts, namespaces, environment);
- `cgroup_fs`, `cgroup_memory`, `cgroup_cpu`, `cgroups`: the run's cgroups and their limits;
- `preparation`: laying out a run and giving back what it held; `spawn`: starting it;
- `process_tree`: finding, signalling and killing its processes.

Callers use the names below.
"""

from scripts_runner.sandbox.cgroup_cpu import cpu_cgroup_root, cpu_cgroup_status
from scripts_runner.sandbox.cgroup_memory import memory_cgroup_root, memory_cgroup_status, oom_kills
from scripts_runner.sandbox.cgroups import cgroups_kill, cgroups_remove, host_cgroup_root
from scripts_runner.sandbox.host_facts import bwrap_binary
from scripts_runner.sandbox.host_probe import probe
from scripts_runner.sandbox.launch import Launch, Limits, SandboxUnavailable
from scripts_runner.sandbox.preparation import prepare, release
from scripts_runner.sandbox.process_tree import descendants, signal_tree
from scripts_runner.sandbox.spawn import network_stop, sandbox_started, start

__all__ = [
    "Launch", "Limits", "SandboxUnavailable", "bwrap_binary", "cgroups_kill", "cgroups_remove", "cpu_cgroup_root",
    "cpu_cgroup_status", "descendants", "host_cgroup_root", "memory_cgroup_root", "memory_cgroup_status",
    "network_stop", "oom_kills", "prepare", "probe", "release", "sandbox_started", "signal_tree", "start",
]
