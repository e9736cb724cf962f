"""A real worker cluster refuses tasks that are not platform tasks, however they reached its queue."""

import pytest
from django.utils import timezone

from core import schedules
from tests.support import wait_until

pytestmark = pytest.mark.e2e


def _raw_enqueue(task_id: str, func: str, *args, **extra) -> None:
    """Write a signed package straight onto the broker (ORM queue row or Redis list): no async_task."""
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    package = {"id": task_id, "name": task_id, "func": func, "args": args, "kwargs": {},
               "started": timezone.now(), **extra}
    get_broker().enqueue(SignedPackage.dumps(package))


def test_worker_refuses_a_raw_queue_write_and_runs_platform_tasks(live_platform, tmp_path):
    from django_q.models import Failure, Success

    trace = tmp_path / "written-by-os-system"
    _raw_enqueue("e2e-allowed", "core.tasks.jobs_recover")
    _raw_enqueue("e2e-refused", "os.system", f"touch {trace}")
    _raw_enqueue("e2e-hook", "core.tasks.jobs_recover", hook="os.system")
    wait_until(lambda: Success.objects.filter(id="e2e-allowed").exists(), timeout=60,
               message="the platform task to run:\n" + live_platform.output())
    refused = wait_until(lambda: Failure.objects.filter(id="e2e-refused").first(), timeout=60,
                         message="the refusal to be recorded")
    hooked = wait_until(lambda: Failure.objects.filter(id="e2e-hook").first(), timeout=60,
                        message="the hook refusal to be recorded")
    assert not trace.exists()
    assert refused.func == schedules.REFUSED_TASK
    assert "Refused to run 'os.system': 'os.system' is not a platform task" in refused.result
    assert "the hook 'os.system' is not a platform task" in hooked.result
    assert "is not a platform task" in wait_until(
        lambda: "Refused task e2e-refused" in live_platform.output() and live_platform.output(),
        timeout=30, message="the worker to log the refusal",
    )
