"""Run the whole platform in one command: the ASGI server (HTTP + websockets) and a worker cluster."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start the ASGI web server (uvicorn) and the django-q2 worker cluster, and stop both together."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "1")))
        parser.add_argument("--no-worker", action="store_true", help="start only the web server")

    def handle(self, *args, host, port, web_workers, no_worker, **options):
        python = sys.executable
        web = [
            python, "-m", "uvicorn", "config.asgi:application", "--host", host, "--port", str(port),
            "--workers", str(web_workers), "--ws", "websockets", "--proxy-headers", "--lifespan", "off",
        ]
        children = [subprocess.Popen(web, cwd=settings.BASE_DIR)]
        if not no_worker:
            children.append(subprocess.Popen([python, "manage.py", "qcluster"], cwd=settings.BASE_DIR))
        self.stdout.write(self.style.SUCCESS(f"Platform running at http://{host}:{port}/ (Ctrl+C stops it)"))

        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        code = 0
        while not stopping:
            for child in children:
                if child.poll() is not None:
                    self.stderr.write(f"{child.args[2] if len(child.args) > 2 else child.args} exited with {child.returncode}")
                    code = child.returncode or 1
                    stopping = True
            time.sleep(0.5)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        sys.exit(code)
