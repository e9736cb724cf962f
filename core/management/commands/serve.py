"""Run the whole platform in one command: the ASGI server (HTTP + websockets) and a worker cluster.

The web server is the platform: if it stops, everything stops. The worker cluster (core's `qcluster`) is
restarted when it dies (with a growing pause, so a worker that cannot start does not spin), and the
website keeps answering meanwhile; the restarted cluster's recovery loop marks the jobs the dead one was
running once its heartbeat is `WORKER_STALE_SECONDS` old. Stopping sends SIGTERM to each child's process
group: the worker cluster interrupts its jobs and exits within `WORKER_STOP_SECONDS` + a few seconds.
"""

import http.client
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

# A worker that stayed up this long before dying starts again after the first pause, not a longer one.
STABLE_SECONDS = 60.0
# While the web server starts, a line every this many seconds says it is still starting.
STARTING_NOTE_SECONDS = 10.0


class Command(BaseCommand):
    help = (
        "Start the ASGI web server (uvicorn) and the django-q2 worker cluster; restart the worker "
        "cluster when it dies; stop both together."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "1")))
        parser.add_argument("--no-worker", action="store_true", help="start only the web server")
        parser.add_argument("--restart-pause", type=float, default=1.0,
                            help="seconds before the first restart of a dead worker (doubled each time, up to 30)")

    def handle(self, *args, host, port, web_workers, no_worker, restart_pause, **options):
        python = sys.executable
        web_command = [
            python, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", str(port),
            "--workers", str(web_workers), "--ws", "websockets", "--proxy-headers", "--lifespan", "off",
        ]
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        url = f"http://{host}:{port}/"
        self.stdout.write(f"Starting the web server (uvicorn, {web_workers} process(es)) for {url} …")
        self.stdout.flush()
        # Each in a process group of its own, so that stopping one stops its children too.
        web = subprocess.Popen(web_command, cwd=settings.BASE_DIR, start_new_session=True)
        worker = None if no_worker else self._start_worker(python)
        started = time.monotonic()
        # "Running" only once the server answers: a user who opens the address then gets the platform.
        answered = self._wait_until_answering(web, host, port, stopped=lambda: stopping)
        if answered:
            self.stdout.write(self.style.SUCCESS(
                f"Platform running at {url} (answered after {time.monotonic() - started:.1f} s; Ctrl+C stops it)"))
            self.stdout.flush()
        code = 0
        pause = restart_pause
        restarts = 0
        restart_at = None
        while not stopping:
            if web.poll() is not None:
                self.stderr.write(f"the web server exited with {web.returncode}; stopping the platform")
                code = web.returncode or 1
                break
            if worker is not None and restart_at is None and worker.poll() is not None:
                lived = time.monotonic() - worker.started
                _stop_group(worker, signal.SIGKILL)  # what the dead cluster's own processes left behind
                if lived >= STABLE_SECONDS:
                    pause = restart_pause
                restarts += 1
                self.stderr.write(
                    f"the worker cluster (pid {worker.pid}) exited with {worker.returncode} after {lived:.0f} s; "
                    f"restarting it in {pause:g} s (restart {restarts}); the website keeps running"
                )
                restart_at = time.monotonic() + pause
                pause = min(pause * 2, 30.0)
            if restart_at is not None and time.monotonic() >= restart_at:
                worker = self._start_worker(python)
                restart_at = None
            time.sleep(0.2)

        children = [web] + ([worker] if worker is not None and worker.poll() is None else [])
        for child in children:
            _stop_group(child, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _stop_group(child, signal.SIGKILL)
        sys.exit(code)

    def _wait_until_answering(self, web, host: str, port: int, *, stopped) -> bool:
        """Wait until the web server answers an HTTP request to /healthz (any answer: a host the
        deployment does not allow still proves the server is up), saying every few seconds that it is
        still starting. False when the server exited first or the platform was asked to stop."""
        probe = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host.strip("[]"))
        started = time.monotonic()
        note_at = started + STARTING_NOTE_SECONDS
        while not stopped() and web.poll() is None:
            connection = http.client.HTTPConnection(probe, port, timeout=2)
            try:
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                return True
            except (OSError, http.client.HTTPException):
                pass
            finally:
                connection.close()
            if time.monotonic() >= note_at:
                self.stdout.write(f"the web server is still starting ({time.monotonic() - started:.0f} s) …")
                self.stdout.flush()
                note_at += STARTING_NOTE_SECONDS
            time.sleep(0.2)
        return False

    def _start_worker(self, python):
        worker = subprocess.Popen([python, "manage.py", "qcluster"], cwd=settings.BASE_DIR, start_new_session=True)
        worker.started = time.monotonic()
        self.stdout.write(f"worker cluster started (pid {worker.pid})")
        self.stdout.flush()
        return worker


def _stop_group(process, sig) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
