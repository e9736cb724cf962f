"""django-q2 entry points (thin)."""

import logging

from core.schedules import previous_release_task
from scripts_runner import runner
from scripts_runner.models import ScriptRun

logger = logging.getLogger(__name__)


def script_run_execute(pk: int) -> None:
    try:
        runner.script_run_execute(pk=pk)
    except ScriptRun.DoesNotExist:
        logger.info("script run %s was deleted while it ran", pk)


def __getattr__(name: str):
    # Tasks queued by the previous release under their old names (core.schedules.PREVIOUS_RELEASE_TASKS).
    return previous_release_task(__name__, name)
