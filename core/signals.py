"""The recovery pass's signals, and the schedules core keeps.

Apps connect their recovery work in `AppConfig.ready()`, so no model has to import its services:
- `job_worker_lost` (sender: the Job model, `job`): a running job has just been failed because its worker
  was lost or stopped (`core.recovery.job_interrupt`); clean up what the job left behind.
- `jobs_recovered` (no sender): a recovery pass ended; e.g. hand out slots a dead worker left free.

The worker cluster's own heartbeat and recovery loop live in `core.workerhost` (started by
`core.cluster`), not in the task queue.
"""

import logging

from django.conf import settings
from django.db.models.signals import post_migrate
from django.dispatch import Signal, receiver

logger = logging.getLogger(__name__)

job_worker_lost = Signal()
jobs_recovered = Signal()

# Recovery once ran as a scheduled task; it is a loop in every worker host now (core.workerhost).
RETIRED_SCHEDULES = ("core: recover stalled jobs", "core: prune worker heartbeats")


@receiver(post_migrate)
def ensure_schedules(sender, **kwargs):
    if getattr(sender, "name", "") != "core":
        return
    from django_q.models import Schedule

    Schedule.objects.filter(name__in=RETIRED_SCHEDULES).delete()
    if settings.DEBUG:
        logger.debug("schedules ensured")
