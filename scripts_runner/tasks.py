"""django-q2 entry points (thin)."""

import logging

from scripts_runner import runner
from scripts_runner.models import ScriptRun

logger = logging.getLogger(__name__)


def run_execute(pk: int) -> None:
    try:
        runner.script_run_execute(pk=pk)
    except ScriptRun.DoesNotExist:
        logger.info("script run %s was deleted while it ran", pk)
