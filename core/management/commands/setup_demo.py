import importlib
import time

from django.conf import settings
from django.core.management.base import BaseCommand

DEMO_APPS = ["trades", "scripts_runner", "etl", "analyzer", "backtest"]


class Command(BaseCommand):
    help = "Load each app's demo data once (idempotent): `<app>.demo.demo_ensure`."

    def add_arguments(self, parser):
        parser.add_argument("--skip", nargs="*", default=[], help="apps to skip")

    def handle(self, *args, skip, **options):
        if not settings.configured:
            return
        for app in DEMO_APPS:
            if app in skip:
                continue
            try:
                module = importlib.import_module(f"{app}.demo")
            except ModuleNotFoundError as exc:
                if exc.name == f"{app}.demo":
                    continue
                raise
            started = time.monotonic()
            module.demo_ensure(stdout=self.stdout)
            self.stdout.write(f"demo data for {app}: ready ({time.monotonic() - started:.1f} s)")
