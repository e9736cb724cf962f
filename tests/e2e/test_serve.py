"""`manage.py serve` (what `make run` starts), as a real process: the website survives its worker."""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import database_url
from tests.support import free_port

pytestmark = pytest.mark.e2e
BASE_DIR = Path(__file__).resolve().parents[2]
STARTED = re.compile(r"worker cluster started \(pid (\d+)\)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


class Console:
    """The serve command's console, read line by line."""

    def __init__(self, proc):
        self.lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream):
        for line in iter(stream.readline, ""):
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self.lines.append(line)
            if match := pattern.search(line):
                return match
        raise AssertionError(f"no line matching {pattern.pattern!r}; console:\n" + "\n".join(self.lines))


def _answers(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status


@pytest.fixture
def serve(transactional_db, tmp_path):
    port = free_port()
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url(), "PLATFORM_MEDIA_ROOT": str(tmp_path / "media"),
        "Q_QUEUE_NAME": f"serve{os.getpid()}", "PYTHONUNBUFFERED": "1", "DJANGO_DEBUG": "true",
    })
    env.pop("PYTEST_VERSION", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--restart-pause", "0.5"], cwd=BASE_DIR, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    yield proc, Console(proc), f"http://127.0.0.1:{port}"
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_a_dead_worker_is_restarted_and_the_website_keeps_answering(serve):
    proc, console, url = serve
    first = int(console.wait_for(STARTED, 60).group(1))
    console.wait_for(re.compile(r"Platform running at"), 60)
    # "Running" is said once the server answers: no wait for a port still being bound.
    assert _answers(url + "/accounts/login/") == 200

    os.killpg(first, signal.SIGKILL)  # the cluster and its worker processes die, as in a crash
    console.wait_for(re.compile(rf"worker cluster \(pid {first}\) exited with -9 .*restarting it in"), 30)
    assert _answers(url + "/accounts/login/") == 200  # the website did not go down with it
    second = int(console.wait_for(STARTED, 30).group(1))
    assert second != first and _alive(second) and not _alive(first)

    # It happens again: the pause before the next restart grows.
    os.killpg(second, signal.SIGKILL)
    console.wait_for(re.compile(r"restarting it in 1 s \(restart 2\)"), 30)
    third = int(console.wait_for(STARTED, 30).group(1))
    assert _alive(third) and proc.poll() is None
    assert _answers(url + "/accounts/login/") == 200

    proc.send_signal(signal.SIGTERM)  # Ctrl+C / stop: both stop together
    assert proc.wait(timeout=30) == 0
    assert not _alive(third)


def test_it_says_running_only_once_the_website_answers(serve):
    """The console tells what happens, in order: starting, then "running" with the time it took, once /healthz
    answers (probed while the line was not yet printed)."""
    proc, console, url = serve
    starting = console.wait_for(re.compile(r"Starting the web server \(uvicorn, 1 process\(es\)\) for (\S+) …"), 60)
    assert starting.group(1) == url + "/"
    refused_before = 0
    running = None
    deadline = time.monotonic() + 120
    while running is None:
        assert time.monotonic() < deadline, "\n".join(console.lines)
        try:
            running = console.wait_for(re.compile(r"Platform running at (\S+) \(answered after ([\d.]+) s;"), 0.3)
        except AssertionError:
            try:
                _answers(url + "/healthz")
            except OSError:
                refused_before += 1
    assert running.group(1) == url + "/" and float(running.group(2)) > 0
    assert _answers(url + "/healthz") == 200
    assert refused_before > 0, "the server answered before the first look: nothing was shown about the order"
    assert console.lines.index(next(line for line in console.lines if "Starting the web server" in line)) < \
        console.lines.index(next(line for line in console.lines if "Platform running at" in line))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
