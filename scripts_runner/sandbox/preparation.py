"""Preparing a run (its directory, uid and command) and giving back what it held afterwards."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from scripts_runner import network as netns
from scripts_runner import seccomp
from scripts_runner.sandbox.bwrap import base_env, bwrap_argv
from scripts_runner.sandbox.cgroups import cgroups_remove
from scripts_runner.sandbox.host_facts import bwrap_binary, python_layout
from scripts_runner.sandbox.launch import Launch, Limits, SandboxUnavailable
from scripts_runner.sandbox.mount_view import in_view, view
from scripts_runner.sandbox.run_uid import run_user_acquire, setpriv_argv, uid_kill_all


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
    layout = python_layout()
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
            argv = bwrap_argv(bwrap=bwrap, run_dir=run_dir, network=network, limits=limits, env=full_env,
                               script_name=script_name, view=current_view)
            # bwrap itself sets no-new-privileges before it starts the script.
            launch.argv = [*(current_view.nsenter(user=user) if current_view else []),
                           *argv, "-I", "-u", script_name, *args]
            launch.env = {"PATH": "/usr/bin:/bin"}
            return launch
        # Unsandboxed (only when an admin allowed it, for trusted hosts): same limits, clean
        # environment, the run's own unprivileged uid, never the network.
        cwd = in_view(current_view, work)
        full_env["HOME"] = cwd
        full_env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
        python = current_view.venv_python if current_view else sys.executable
        launch.argv = [*(current_view.nsenter(wd=cwd) if current_view else []), *setpriv_argv(user),
                       python, "-I", "-u", script_name, *args]
        launch.env, launch.cwd = full_env, str(work)
        return launch
    except BaseException:
        release(launch)
        raise


def release(launch: Launch) -> None:
    """After the run: kill what is left of it, remove its cgroups, give back its uid and descriptors."""
    launch.status_close()
    user = launch.run_user
    if user is not None and os.pread(user.lock_fd, 1, 0):
        # Unsandboxed: a child that left the process group (setsid, double fork) is found by its uid.
        # (A sandboxed run's processes all die with its pid namespace.)
        uid_kill_all(user.uid)
        os.ftruncate(user.lock_fd, 0)
    cgroups_remove(launch)
    if user is not None:
        os.close(user.lock_fd)
        launch.run_user = None
