"""Simulated hosts for the several-hosts tests.

Each host is a mount namespace of its own (`unshare --mount`) with a private tmpfs mounted at the
same var path, so every host has "its own local disk" at the same place and none sees another's:
a file one host's web server or worker writes there is simply absent on the other host. The host's
web server and worker are started inside that namespace (`nsenter --mount`), share the test's
database and Redis, and can be killed one by one as a crash would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import free_port

BASE_DIR = Path(__file__).resolve().parents[2]


def namespaces_available() -> str | None:
    """None when this machine can make mount namespaces; otherwise why not (the test is skipped)."""
    for tool in ("unshare", "nsenter", "mount"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
         "mount -t tmpfs tmpfs /mnt 2>/dev/null || mount -t tmpfs tmpfs /tmp"],
        capture_output=True, text=True,
    )
    if probe.returncode != 0:
        return f"cannot make a mount namespace with a tmpfs here: {probe.stderr.strip() or probe.returncode}"
    return None


def _kill_group(proc: subprocess.Popen | None, sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


@dataclass
class Host:
    """One simulated host: its own local disk (a tmpfs at `var_dir`), a web server and a worker."""

    name: str
    var_dir: Path
    env: dict
    logdir: Path
    store: object = None  # the shared S3-compatible store (tests' S3Store)
    port: int = field(default_factory=free_port)
    holder: subprocess.Popen | None = None
    web: subprocess.Popen | None = None
    worker: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def boot(self) -> None:
        """Make the namespace: a process holds it, with a fresh tmpfs at var_dir inside."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
             'mount -t tmpfs -o size=1g,mode=0755 tmpfs "$0" && echo mounted && exec sleep infinity',
             str(self.var_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        line = self.holder.stdout.readline().strip()
        if line != "mounted":
            raise RuntimeError(f"host {self.name}: could not mount its disk: {line or self.holder.wait()}")

    def inside(self, argv: list[str], *, log: str | None = None, env: dict | None = None) -> subprocess.Popen:
        """Start a process inside this host (its mount namespace), in a process group of its own."""
        out = open(self.logdir / log, "ab") if log else subprocess.DEVNULL
        return subprocess.Popen(
            ["nsenter", f"--target={self.holder.pid}", "--mount", f"--wd={BASE_DIR}", "--", *argv],
            cwd=BASE_DIR, env=env or self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def sees(self, path: str | Path) -> bool:
        """Whether a path exists on this host's disk."""
        return self.inside(["test", "-e", str(path)]).wait(timeout=10) == 0

    def start_web(self) -> None:
        self.web = self.inside(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--ws", "websockets", "--lifespan", "off", "--log-level", "warning"],
            log=f"{self.name}-web.log",
        )

    def start_worker(self) -> None:
        self.worker = self.inside([sys.executable, "manage.py", "qcluster"], log=f"{self.name}-worker.log")

    def kill_web(self, sig: int = signal.SIGKILL) -> None:
        _kill_group(self.web, sig)
        if self.web is not None:
            self.web.wait(timeout=15)

    def kill_worker(self, sig: int = signal.SIGKILL) -> None:
        _kill_group(self.worker, sig)
        if self.worker is not None:
            self.worker.wait(timeout=15)

    def output(self) -> str:
        parts = []
        for path in sorted(self.logdir.glob(f"{self.name}-*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def close(self) -> None:
        for proc in (self.web, self.worker):
            _kill_group(proc, signal.SIGTERM)
        for proc in (self.web, self.worker):
            if proc is not None and proc.poll() is None:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    _kill_group(proc, signal.SIGKILL)
        _kill_group(self.holder, signal.SIGKILL)
        if self.holder is not None:
            self.holder.wait(timeout=10)
