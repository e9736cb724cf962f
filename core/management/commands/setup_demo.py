import importlib
import logging
import time
from contextlib import contextmanager

from django.conf import settings
from django.core.management.base import BaseCommand

DEMO_APPS = ["trades", "scripts_runner", "etl", "analyzer", "backtest"]


class _QueuedJobs(logging.Filter):
    """Counts django-q2's "Enqueued …" lines instead of printing one per demo job (there are about a hundred)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Enqueued"):
            self.count += 1
            return False
        return True


@contextmanager
def _queued_jobs_counted():
    counter = _QueuedJobs()
    logger = logging.getLogger("django-q")
    logger.addFilter(counter)
    try:
        yield counter
    finally:
        logger.removeFilter(counter)


class Command(BaseCommand):
    help = "Load each app's demo data once (idempotent): `<app>.demo.demo_ensure`."

    def add_arguments(self, parser):
        parser.add_argument("--skip", nargs="*", default=[], help="apps to skip")

    def handle(self, *args, skip, **options):
        if not settings.configured:
            return
        with _queued_jobs_counted() as queued:
            for app in DEMO_APPS:
                if app in skip:
                    continue
                try:
                    module = importlib.import_module(f"{app}.demo")
                except ModuleNotFoundError as exc:
                    if exc.name == f"{app}.demo":
                        continue
                    raise
                self.stdout.write(f"demo data for {app}: loading …")
                self.stdout.flush()
                started, before = time.monotonic(), queued.count
                module.demo_ensure(stdout=self.stdout)
                jobs = queued.count - before
                self.stdout.write(f"demo data for {app}: ready ({time.monotonic() - started:.1f} s"
                                  + (f"; {jobs} background job(s) queued for the worker" if jobs else "") + ")")
