"""Starting a prepared run: its descriptors, the exec chain that joins its cgroups and sets its
limits, its network namespace, and whether bwrap got as far as the script."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess

from scripts_runner import network as netns
from scripts_runner.sandbox.cgroups import cgroups_remove, run_cgroups_create
from scripts_runner.sandbox.launch import STATUS_SLOT, Launch, Limits


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
    launch.status_close()
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


def network_stop(launch: Launch) -> None:
    """Remove the run's network namespace, its pasta and holder (after the run, or if it could not start)."""
    if launch.run_network is not None:
        launch.run_network.stop()
        launch.run_network = None


def start(launch: Launch) -> subprocess.Popen:
    run_cgroups_create(launch)
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
