"""Workers run platform tasks only: schedules (admin, ORM), queued tasks (async_task, raw broker writes)."""

from multiprocessing import Value

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_q.models import Failure, OrmQ, Schedule, Success

from core import schedules

# --- the allow-list ------------------------------------------------------------------------


def test_allow_list_is_the_platform_tasks_modules():
    tasks = schedules.platform_tasks()
    for name in ("core.tasks.jobs_recover", "etl.tasks.fetch_job_request_daily", "backtest.tasks.bars_fetch_active",
                 "trades.tasks.export_run", "scripts_runner.tasks.script_run_execute"):
        assert name in tasks
    # imported helpers, private functions, third-party tasks modules and builtins are not on it
    for name in ("core.tasks.services", "core.tasks._worker_check_body", "etl.tasks.job_execute",
                 "django_q.tasks.async_task", "os.system", "subprocess.run", "builtins.exec"):
        assert name not in tasks
    import os

    assert schedules.is_platform_task(tasks["core.tasks.jobs_recover"])
    assert not schedules.is_platform_task(os.system)


# --- saving a schedule -------------------------------------------------------------------------


@pytest.mark.parametrize("fields,field,needle", [
    ({"func": "os.system", "args": "'touch /tmp/x'"}, "func", "'os.system' is not a platform task"),
    ({"func": "core.tasks.jobs_recover", "hook": "os.system"}, "hook", "'os.system' is not a platform task"),
    ({"func": "core.tasks.jobs_recover", "kwargs": "q_options={'hook': 'os.system'}"}, "kwargs", "os.system"),
    ({"func": "django_q.tasks.async_task"}, "func", "not a platform task"),
])
def test_orm_save_of_a_foreign_task_is_refused(db, fields, field, needle):
    with pytest.raises(ValidationError) as err:
        Schedule.objects.create(name="bad", schedule_type=Schedule.ONCE, **fields)
    assert needle in " ".join(err.value.message_dict[field])
    assert not Schedule.objects.filter(name="bad").exists()


def test_changing_an_existing_schedule_to_a_foreign_task_is_refused(db):
    recovery = Schedule.objects.create(name="recover", func="core.tasks.jobs_recover", schedule_type=Schedule.MINUTES)
    recovery.func = "os.system"
    with pytest.raises(ValidationError):
        recovery.save()
    assert Schedule.objects.get(pk=recovery.pk).func == "core.tasks.jobs_recover"
    from django_q.tasks import schedule

    with pytest.raises(ValidationError):
        schedule("os.system", "id", name="via django_q.tasks.schedule")


def test_platform_schedules_still_save(db):
    made = Schedule.objects.create(name="ok", func="etl.tasks.fetch_job_request_daily", hook="core.tasks.jobs_recover")
    made.repeats = 3
    made.save()
    assert Schedule.objects.get(pk=made.pk).repeats == 3


def test_admin_form_shows_the_error(client, root_user):
    client.force_login(root_user)
    data = {"name": "pwn", "func": "os.system", "hook": "", "args": "'touch /tmp/pwned'", "kwargs": "",
            "schedule_type": "O", "minutes": "", "repeats": "-1", "cluster": "", "cron": "",
            "intended_date_kwarg": "", "next_run_0": "2030-01-01", "next_run_1": "00:00:00"}
    response = client.post("/admin/django_q/schedule/add/", data)
    assert response.status_code == 200
    assert "&#x27;os.system&#x27; is not a platform task" in response.content.decode()
    assert not Schedule.objects.filter(name="pwn").exists()
    response = client.post("/admin/django_q/schedule/add/", {**data, "func": "etl.tasks.fetch_job_request_daily"})
    assert response.status_code == 302
    assert Schedule.objects.filter(name="pwn", func="etl.tasks.fetch_job_request_daily").exists()


# --- queueing and running ------------------------------------------------------------------------


def _run_in_worker(broker) -> None:
    """One pass of django-q2's own pusher → worker → monitor path, in this process."""
    from django_q.monitor import monitor
    from django_q.signing import SignedPackage
    from django_q.worker import worker
    from multiprocessing import Queue

    task_queue, result_queue = Queue(), Queue()
    while batch := broker.dequeue():  # Conf.BULK tasks at a time, as the pusher takes them
        for ack_id, payload in batch:
            task = SignedPackage.loads(payload)
            task["ack_id"] = ack_id
            task_queue.put(task)
    task_queue.put("STOP")
    from unittest import mock

    from django_q.conf import Conf

    # Conf.SYNC tells the platform's worker-start hook (core.signals) that this is not a worker
    # process, so it starts no heartbeat thread in the test process; the tasks themselves run as usual.
    with mock.patch.object(Conf, "SYNC", True):
        worker(task_queue, result_queue, Value("f", -1))
    result_queue.put("STOP")
    monitor(result_queue, broker)


@pytest.fixture
def orm_broker(settings, monkeypatch):
    from django_q.conf import Conf

    queue = "refusal-test"
    monkeypatch.setattr(Conf, "CLUSTER_NAME", queue)
    monkeypatch.setattr(Conf, "ORM", "default")
    broker = schedules.PlatformORMBroker(list_key=queue)
    yield broker
    OrmQ.objects.filter(key=queue).delete()


def test_a_raw_queue_write_is_refused_by_the_worker(transactional_db, orm_broker, tmp_path):
    """A task written straight into the ORM queue (no async_task, no save-time check)."""
    from django_q.signing import SignedPackage

    trace = tmp_path / "pwned"
    package = {"id": "raw-1", "name": "raw-1", "func": "os.system", "args": (f"touch {trace}",), "kwargs": {},
               "started": timezone.now()}
    OrmQ.objects.create(key=orm_broker.list_key, payload=SignedPackage.dumps(package), lock=timezone.now())
    _run_in_worker(orm_broker)
    assert not trace.exists()
    failure = Failure.objects.get(id="raw-1")
    assert failure.func == schedules.REFUSED_TASK
    assert "Refused to run 'os.system'" in failure.result and "not a platform task" in failure.result


def test_a_raw_queue_write_with_a_foreign_hook_is_refused(transactional_db, orm_broker, tmp_path):
    from django_q.signing import SignedPackage

    trace = tmp_path / "hooked"
    package = {"id": "raw-2", "name": "raw-2", "func": "core.tasks.jobs_recover", "args": (), "kwargs": {},
               "hook": "os.system", "started": timezone.now()}
    OrmQ.objects.create(key=orm_broker.list_key, payload=SignedPackage.dumps(package), lock=timezone.now())
    _run_in_worker(orm_broker)
    failure = Failure.objects.get(id="raw-2")
    assert "the hook 'os.system' is not a platform task" in failure.result
    assert failure.hook is None


def test_a_platform_task_from_the_queue_runs(transactional_db, orm_broker):
    from django_q.signing import SignedPackage

    package = {"id": "raw-3", "name": "raw-3", "func": "core.tasks.jobs_recover", "args": (), "kwargs": {},
               "started": timezone.now()}
    OrmQ.objects.create(key=orm_broker.list_key, payload=SignedPackage.dumps(package), lock=timezone.now())
    _run_in_worker(orm_broker)
    assert Success.objects.get(id="raw-3").result == {"worker_lost": 0, "requeued": 0}


@pytest.mark.parametrize("as_callable", [False, True])
def test_async_task_of_a_foreign_function_never_runs(db, sync_jobs, tmp_path, as_callable):
    import os

    from django_q.tasks import async_task

    trace = tmp_path / "pwned"
    with pytest.raises(schedules.TaskRefused, match="not a platform task"):
        async_task(os.system if as_callable else "os.system", f"touch {trace}")
    assert not trace.exists()


def test_async_task_queues_a_refusal_not_the_function(db, orm_broker):
    from django_q.signing import SignedPackage
    from django_q.tasks import async_task

    async_task("os.system", "id", broker=orm_broker)
    queued = SignedPackage.loads(OrmQ.objects.get(key=orm_broker.list_key).payload)
    assert queued["func"] == schedules.REFUSED_TASK and queued["args"][0] == "os.system"


def test_scheduler_keeps_running_good_schedules_past_a_bad_row(transactional_db, orm_broker, tmp_path):
    """A bad row slipped in by .update() (no save-time check): the scheduler still serves the others,
    and what it queues for the bad row is a refusal."""
    from django_q.scheduler import scheduler
    from django_q.signing import SignedPackage

    trace = tmp_path / "pwned"
    past = timezone.now() - timezone.timedelta(minutes=1)
    queue = orm_broker.list_key
    good = Schedule.objects.create(name="good", func="core.tasks.jobs_recover", next_run=past, cluster=queue,
                                   schedule_type=Schedule.MINUTES, minutes=1, repeats=-1)
    bad = Schedule.objects.create(name="bad", func="core.tasks.jobs_recover", next_run=past, cluster=queue,
                                  schedule_type=Schedule.MINUTES, minutes=1, repeats=-1)
    Schedule.objects.filter(pk=bad.pk).update(func="os.system", args=repr(f"touch {trace}"))
    scheduler(broker=orm_broker)
    queued = [SignedPackage.loads(row.payload) for row in OrmQ.objects.filter(key=orm_broker.list_key)]
    assert sorted(task["func"] for task in queued) == ["core.schedules.refused_task", "core.tasks.jobs_recover"]
    for schedule_row in (good, bad):
        schedule_row.refresh_from_db()
        assert schedule_row.next_run > timezone.now()
    _run_in_worker(orm_broker)
    assert not trace.exists()
    assert Success.objects.filter(func="core.tasks.jobs_recover").count() == 1
    assert Failure.objects.filter(func=schedules.REFUSED_TASK).count() == 1


def test_refusals_are_logged(db, orm_broker, caplog):
    from django_q.tasks import async_task

    with caplog.at_level("ERROR", logger="core.schedules"):
        async_task("os.system", "id", broker=orm_broker)
    assert "'os.system' is not a platform task" in caplog.text


# --- task names ----------------------------------------------------------------------------------


def test_each_task_is_named_like_the_service_it_calls():
    import inspect
    import re

    current = {name: func for name, func in schedules.platform_tasks().items()
               if name not in schedules.PREVIOUS_RELEASE_TASKS}
    assert len(current) >= 10
    for name, func in current.items():
        attr = name.rsplit(".", 1)[1]
        assert re.search(rf"\.{attr}\b", inspect.getsource(func)), f"{name} does not call a service named {attr}"


def test_old_task_names_answer_with_the_renamed_task():
    import pydoc

    tasks = schedules.platform_tasks()
    assert schedules.PREVIOUS_RELEASE_TASKS
    for old, new in schedules.PREVIOUS_RELEASE_TASKS.items():
        assert new in tasks and old in tasks
        assert pydoc.locate(old) is pydoc.locate(new) is tasks[new]
        assert schedules.is_platform_task(old)
    from backtest import tasks as backtest_tasks

    with pytest.raises(AttributeError):
        backtest_tasks.no_such_task  # noqa: B018
    # The admin lists only the current names.
    with pytest.raises(ValidationError) as err:
        schedules.validate_task_path("os.system")
    message = " ".join(err.value.message_dict["func"])
    assert "backtest.tasks.backtest_run_execute" in message and "backtest.tasks.run_execute" not in message


def test_a_task_queued_by_the_previous_release_still_runs(transactional_db, orm_broker, user):
    """A backtest run queued under the task's old name (as the previous release queued it) runs to the end."""
    from django_q.signing import SignedPackage

    from backtest import market_services
    from backtest import services as backtest_services
    from backtest.models import BacktestRun

    instrument = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE")
    market_services.bars_generate(instrument=instrument, interval="1h", bars=300, start="2024-01-01", seed=1,
                                  start_price=40_000)
    run, _ = backtest_services.backtest_run_create(owner=user, instrument=instrument, interval="1h",
                                                   strategy="sma_cross", params={"fast": 5, "slow": 20})
    OrmQ.objects.filter(key=orm_broker.list_key).delete()  # the copy this release queued
    package = {"id": "old-1", "name": "old-1", "func": "backtest.tasks.run_execute", "args": (run.pk,),
               "kwargs": {}, "started": timezone.now()}
    OrmQ.objects.create(key=orm_broker.list_key, payload=SignedPackage.dumps(package), lock=timezone.now())
    _run_in_worker(orm_broker)
    assert Success.objects.get(id="old-1").func == "backtest.tasks.run_execute"
    run = BacktestRun.objects.get(pk=run.pk)
    assert run.status == "succeeded" and run.result is not None and run.result.bar_count == 300


def _migration(app: str, name: str):
    import importlib

    return importlib.import_module(f"{app}.migrations.{name}")


TASK_NAME_MIGRATIONS = [("backtest", "0006_task_names"), ("etl", "0003_task_names"),
                        ("scripts_runner", "0004_task_names")]


def test_task_name_migrations_cover_every_rename():
    renames = {}
    for app, name in TASK_NAME_MIGRATIONS:
        renames.update(_migration(app, name).RENAMES)
    assert renames == schedules.PREVIOUS_RELEASE_TASKS


def test_the_migration_rewrites_stored_schedules_and_back(db):
    from django.apps import apps

    migration = _migration("etl", "0003_task_names")
    daily = Schedule.objects.create(name="old daily", func="etl.tasks.daily_fetch", schedule_type=Schedule.DAILY)
    hooked = Schedule.objects.create(name="old hook", func="core.tasks.jobs_recover",
                                     hook="etl.tasks.record_export_run", schedule_type=Schedule.DAILY)
    other = Schedule.objects.create(name="untouched", func="core.tasks.jobs_recover", schedule_type=Schedule.DAILY)
    migration.forward(apps, None)
    assert Schedule.objects.get(pk=daily.pk).func == "etl.tasks.fetch_job_request_daily"
    assert Schedule.objects.get(pk=hooked.pk).hook == "etl.tasks.record_export_execute"
    assert Schedule.objects.get(pk=other.pk).func == "core.tasks.jobs_recover"
    migration.backward(apps, None)
    assert Schedule.objects.get(pk=daily.pk).func == "etl.tasks.daily_fetch"
    assert Schedule.objects.get(pk=hooked.pk).hook == "etl.tasks.record_export_run"


def test_the_fetch_schedule_made_by_an_older_migration_carries_the_new_name(db):
    assert not Schedule.objects.filter(func="backtest.tasks.fetch_active").exists()
    assert Schedule.objects.filter(name="backtest: fetch Binance klines", func="backtest.tasks.bars_fetch_active").exists()
