"""`manage.py qcluster`: the platform's worker cluster (`core.cluster.PlatformCluster`).

It takes the place of django-q2's command of the same name (core comes first in INSTALLED_APPS), so every
way of starting a worker (systemd, `serve`, the tests) runs the cluster that stops cleanly on SIGTERM,
beats as one instance (`WORKER_ID`) and runs the recovery loop.
"""

import os
import sys

from django.conf import settings
from django_q.management.commands.qcluster import Command as DjangoQCommand

from core.cluster import PlatformCluster


class Command(DjangoQCommand):
    help = ("Start one worker cluster instance: django-q2 workers, the instance heartbeat and the recovery "
            "loop. SIGTERM (to it or its whole process group) stops it within WORKER_STOP_SECONDS + a few.")

    def handle(self, *args, **options):
        settings.SECRET_KEY  # signing needs it: fail at once without it
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        cluster = PlatformCluster()
        if options.get("run_once"):
            cluster.start()
            cluster.stop()
            return
        code = cluster.run()
        if code:
            sys.exit(code)
