"""Workers run platform tasks only.

The allow-list is every public function defined in the `tasks.py` module of a
platform app (`settings.PLATFORM_APPS`). A task's `func`, and its result
`hook` if it has one, must each be on it.

It is checked at every door a task can come through:
- saving a django-q2 Schedule: a form error in the admin, and a `pre_save`
  check for every other save (shell, code) that sets a new func or hook;
- queuing with `async_task` (the scheduler, code, the shell; `pre_enqueue`);
- taking a task off the broker in the worker (the broker classes below), which
  also covers what save-time checks cannot see: `.update()`, historical models in
  migrations, rows written straight into the ORM queue or pushed onto Redis.

A refused task is not run: it is replaced by `refused_task`, which fails with
a clear message, so the refusal is logged and shows in the admin's failed tasks.

Tasks renamed by a release keep their old dotted path for one release in
`PREVIOUS_RELEASE_TASKS`: tasks the previous release queued (and schedules it
saved during a rolling deploy) still name the old path, so each renamed
`tasks.py` answers the old attribute through `previous_release_task`, and the
old path stays on the allow-list. Stored schedules are moved to the new names
by a data migration (`task_paths_rewrite`).
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import logging
from time import sleep

from django.conf import settings
from django.core.exceptions import ValidationError
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.signing import BadSignature, SignedPackage

from core.brokers import HeldORMMixin, HeldRedisMixin

logger = logging.getLogger(__name__)

REFUSED_TASK = "core.schedules.refused_task"


class TaskRefused(Exception):
    pass


# Old dotted path -> new one, for tasks queued by the previous release. Remove an entry
# one release after its rename, once no queue or schedule can still hold the old path.
PREVIOUS_RELEASE_TASKS: dict[str, str] = {
    "backtest.tasks.run_execute": "backtest.tasks.backtest_run_execute",
    "backtest.tasks.fetch_active": "backtest.tasks.bars_fetch_active",
    "backtest.tasks.import_execute": "backtest.tasks.bars_import_execute",
    "etl.tasks.fetch_job_run": "etl.tasks.fetch_job_execute",
    "etl.tasks.record_export_run": "etl.tasks.record_export_execute",
    "etl.tasks.daily_fetch": "etl.tasks.fetch_job_request_daily",
    "scripts_runner.tasks.run_execute": "scripts_runner.tasks.script_run_execute",
}


def previous_release_task(module: str, attr: str):
    """The module `__getattr__` of a tasks.py: an old task name answers with the renamed function."""
    new = PREVIOUS_RELEASE_TASKS.get(f"{module}.{attr}")
    if new is None:
        raise AttributeError(f"module {module!r} has no attribute {attr!r}")
    new_module, _, new_attr = new.rpartition(".")
    return getattr(importlib.import_module(new_module), new_attr)


def task_paths_rewrite(apps, *, renames: dict[str, str]) -> int:
    """Data migration step: stored schedules' func and hook move from each old path to its new one.

    `renames` is the migration's own frozen copy (history does not change when the
    aliases above are retired); pass it reversed to undo.
    """
    Schedule = apps.get_model("django_q", "Schedule")
    changed = 0
    for old, new in renames.items():
        changed += Schedule.objects.filter(func=old).update(func=new)
        changed += Schedule.objects.filter(hook=old).update(hook=new)
    return changed


@functools.cache
def platform_tasks() -> dict[str, object]:
    """{dotted path: function} of every task function of the platform's apps."""
    found: dict[str, object] = {}
    for app in settings.PLATFORM_APPS:
        name = f"{app}.tasks"
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if attr.startswith("_") or not inspect.isfunction(value) or value.__module__ != name:
                continue
            found[f"{name}.{attr}"] = value
    for old, new in PREVIOUS_RELEASE_TASKS.items():
        if new in found:
            found[old] = found[new]
    return found


def task_name(func) -> str:
    """How a task's func or hook is shown: its dotted path (or repr for anything else)."""
    if isinstance(func, str):
        return func
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}.{qualname}"
    return repr(func)[:200]


def is_platform_task(func) -> bool:
    tasks = platform_tasks()
    if isinstance(func, str):
        return func in tasks
    # A function object (pickled by reference): it must be that very function.
    return any(func is allowed for allowed in tasks.values())


def _refusal(func, hook) -> str | None:
    if func != REFUSED_TASK and not is_platform_task(func):
        return f"{task_name(func)!r} is not a platform task"
    if hook not in (None, "") and not is_platform_task(hook):
        return f"the hook {task_name(hook)!r} is not a platform task"
    return None


def refused_task(func: str = "", hook: str = "", reason: str = "") -> None:
    """Stands in for a refused task: fails with the reason, runs nothing else."""
    raise TaskRefused(
        f"Refused to run {func!r}: {reason}. Workers run only the functions in the platform apps' tasks.py."
    )


def refuse_if_not_platform(task: dict, *, where: str) -> bool:
    """Rewrite a task package in place to `refused_task` when its func or hook is not allowed."""
    reason = _refusal(task.get("func"), task.get("hook"))
    if reason is None:
        return False
    func, hook = task_name(task.get("func")), task_name(task.get("hook")) if task.get("hook") else ""
    logger.error("Refused task %s (%s) %s: %s", task.get("name"), task.get("id"), where, reason)
    task.update(func=REFUSED_TASK, hook=None, args=(func, hook, reason), kwargs={})
    task.pop("chain", None)
    return True


# --- the schedule model ------------------------------------------------------------------


def validate_task_path(value: str, *, field: str = "func") -> None:
    if not value:
        if field == "func":
            raise ValidationError({"func": "Enter the task function."})
        return
    if not is_platform_task(value):
        allowed = ", ".join(sorted(name for name in platform_tasks() if name not in PREVIOUS_RELEASE_TASKS))
        label = "function" if field == "func" else "hook"
        raise ValidationError(
            {field: f"{value!r} is not a platform task. A schedule's {label} must be one of: {allowed}."}
        )


def _schedule_kwargs_hook(kwargs_text: str):
    """The hook a schedule's kwargs would pass through `q_options`, parsed as django-q2's scheduler does."""
    if not kwargs_text:
        return None
    try:
        kwargs = ast.literal_eval(kwargs_text)
    except (SyntaxError, ValueError):
        try:
            call = ast.parse(f"f({kwargs_text})").body[0].value
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        except (SyntaxError, ValueError, AttributeError):
            return None
    if not isinstance(kwargs, dict) or not isinstance(kwargs.get("q_options"), dict):
        return None
    return kwargs["q_options"].get("hook")


def validate_schedule(schedule) -> None:
    """Raise ValidationError unless the schedule's func and hook (field or q_options) are platform tasks."""
    errors: dict[str, list[str]] = {}
    checks = [("func", schedule.func), ("hook", schedule.hook)]
    kwargs_hook = _schedule_kwargs_hook(schedule.kwargs or "")
    if kwargs_hook is not None:
        checks.append(("kwargs", kwargs_hook))
    for field, value in checks:
        try:
            text = "" if value is None else value if isinstance(value, str) else task_name(value)
            validate_task_path(text, field=field)
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                errors.setdefault(key, []).extend(messages)
    if errors:
        raise ValidationError(errors)


def check_schedule_save(sender, instance, **kwargs) -> None:
    """pre_save of Schedule: a save that sets a func or hook off the list is refused.

    A save that leaves an existing row's func, hook and kwargs as they are is let
    through, so that the scheduler can still move a bad row's next run (one bad row
    must not stop every schedule); the worker refuses to run it.
    """
    if kwargs.get("raw"):
        validate_schedule(instance)
        return
    if instance.pk is not None:
        stored = type(instance).objects.filter(pk=instance.pk).values_list("func", "hook", "kwargs").first()
        if stored is not None and stored == (instance.func, instance.hook, instance.kwargs):
            return
    try:
        validate_schedule(instance)
    except ValidationError:
        logger.error("Refused to save schedule %r with func %r, hook %r", instance.name, instance.func, instance.hook)
        raise


def check_enqueue(sender, task, **kwargs) -> None:
    """pre_enqueue: a task off the list is queued as `refused_task` (never raises: the scheduler calls this)."""
    refuse_if_not_platform(task, where="when queued")


# --- the worker's brokers ----------------------------------------------------------------


class PlatformBrokerMixin:
    """Re-checks every task taken off the queue before the worker sees it (taken onto this worker
    cluster's held list: `core.brokers`)."""

    def dequeue(self):
        from core.workerhost import worker_stopping

        if worker_stopping():  # a stopping cluster takes no new task
            sleep(0.1)
            return None
        tasks = super().dequeue()
        if not tasks:
            return tasks
        checked = []
        for ack_id, payload in tasks:
            try:
                task = SignedPackage.loads(payload)
            except (TypeError, BadSignature):
                checked.append((ack_id, payload))  # the pusher rejects and logs it
                continue
            if isinstance(task, dict) and refuse_if_not_platform(task, where="by the worker"):
                payload = SignedPackage.dumps(task)
            checked.append((ack_id, payload))
        return checked


class PlatformORMBroker(PlatformBrokerMixin, HeldORMMixin, ORM):
    pass


class PlatformRedisBroker(PlatformBrokerMixin, HeldRedisMixin, Redis):
    pass
