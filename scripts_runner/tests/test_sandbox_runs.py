"""Real sandboxed runs (bubblewrap, real subprocesses), executed inline by this process as the worker.

The end-to-end tests in tests/e2e/ run the same scripts through a real
django-q2 worker process; these cover the limits and the isolation quickly.
"""

import os
import socket
import threading
import time

import pytest
from django.conf import settings

from core.models import JobStatus
from tests.support import wait_until
from scripts_runner import sandbox, services
from scripts_runner.models import EndReason, LogChunk, ScriptRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sandbox_available")]


def log_lines(run, stream=None):
    lines = []
    for chunk in LogChunk.objects.filter(run=run).order_by("seq"):
        if stream is None or chunk.stream == stream:
            lines.extend(chunk.lines())
    return lines


def test_hello_with_args_env_and_packages(runner, execute):
    code = (
        "import os, sys\n"
        "import pandas\n"
        "print('args', sys.argv[1:])\n"
        "print('env', os.environ.get('GREETING'), os.environ.get('DJANGO_SETTINGS_MODULE'))\n"
        "print('cwd', os.getcwd())\n"
    )
    run = execute(runner, code, args=["one", "two words"], env={"GREETING": "hi"})
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.exit_code == 0 and run.end_reason == EndReason.EXITED
    assert run.sandboxed and not run.network
    assert log_lines(run) == ["args ['one', 'two words']", "env hi None", "cwd /sandbox"]
    assert run.started_at and run.finished_at and run.duration.total_seconds() >= 0


def test_heavy_output_stored_in_order_with_stderr_marked(runner, execute):
    code = (
        "import sys\n"
        "for i in range(60000):\n"
        "    print(f'line {i}')\n"
        "    if i % 5000 == 0:\n"
        "        print(f'warn {i}', file=sys.stderr)\n"
    )
    run = execute(runner, code)
    assert run.status == JobStatus.SUCCEEDED
    out = log_lines(run, "stdout")
    assert out == [f"line {i}" for i in range(60000)]
    assert log_lines(run, "stderr") == [f"warn {i}" for i in range(0, 60000, 5000)]
    seqs = list(LogChunk.objects.filter(run=run).order_by("seq").values_list("seq", "first_line", "line_count"))
    assert [s for s, _, _ in seqs] == list(range(1, len(seqs) + 1))
    # first_line numbers are contiguous across chunks
    expected = 1
    for _, first, count in seqs:
        assert first == expected
        expected += count
    assert run.output_lines == 60000 + 12 == expected - 1


def test_exit_code_and_signal(runner, execute):
    run = execute(runner, "import sys\nprint('bye')\nsys.exit(3)\n")
    assert run.status == JobStatus.FAILED and run.exit_code == 3 and run.end_reason == EndReason.EXITED
    run = execute(runner, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", name="segv.py")
    assert run.status == JobStatus.FAILED and run.exit_code == 128 + 11


def test_uncaught_exception_goes_to_stderr(runner, execute):
    run = execute(runner, "raise ValueError('bad row 7')\n")
    assert run.status == JobStatus.FAILED and run.exit_code == 1
    assert log_lines(run, "stderr")[-1] == "ValueError: bad row 7"


def test_wall_time_limit(runner, execute, settings):
    settings.SCRIPTS_RUNNER_WALL_SECONDS = 1
    run = execute(runner, "import time\nprint('start', flush=True)\nwhile True:\n    time.sleep(0.1)\n")
    assert run.status == JobStatus.FAILED and run.end_reason == EndReason.TIMED_OUT
    assert "wall-time limit" in log_lines(run, "system")[-1]


def test_cpu_limit(runner, execute, settings):
    settings.SCRIPTS_RUNNER_CPU_SECONDS = 1
    run = execute(runner, "while True:\n    pass\n")
    assert run.status == JobStatus.FAILED and run.end_reason == EndReason.CPU_LIMIT
    assert run.exit_code in (128 + 24, 128 + 9)


def test_infinite_output_hits_the_cap(runner, execute, settings):
    settings.SCRIPTS_RUNNER_OUTPUT_BYTES = 200_000
    run = execute(runner, "while True:\n    print('x' * 100)\n")
    assert run.status == JobStatus.FAILED and run.end_reason == EndReason.OUTPUT_LIMIT
    assert run.truncated and run.output_bytes == 200_000
    assert "output limit" in log_lines(run)[-1]


def test_long_line_truncated_with_marker(runner, execute, settings):
    settings.SCRIPTS_RUNNER_LINE_BYTES = 1000
    run = execute(runner, "print('a' * 5000)\nprint('after')\n")
    assert run.status == JobStatus.SUCCEEDED
    lines = log_lines(run)
    assert lines[0].startswith("a" * 1000) and lines[0].endswith("[line truncated at 1,000 bytes]")
    assert lines[1] == "after" and run.truncated


def test_memory_bomb_ends_out_of_memory(runner, execute, settings):
    settings.SCRIPTS_RUNNER_MEMORY_BYTES = 512 * 1024 * 1024
    run = execute(runner, "blocks = []\nwhile True:\n    blocks.append(bytearray(32 * 1024 * 1024))\n")
    assert run.status == JobStatus.FAILED and run.end_reason == EndReason.OUT_OF_MEMORY


def test_fork_bomb_is_contained(runner, execute, settings):
    settings.SCRIPTS_RUNNER_PROCESSES = 32
    settings.SCRIPTS_RUNNER_WALL_SECONDS = 20
    code = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    while n < 10000:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except OSError as exc:\n"
        "    print('refused after', n, flush=True)\n"
    )
    run = execute(runner, code)
    lines = log_lines(run, "stdout")
    assert lines and lines[0].startswith("refused after")
    assert int(lines[0].split()[-1]) < 32
    assert run.status == JobStatus.SUCCEEDED  # the main process exited; the sandbox took the children with it


def test_filesystem_is_isolated(runner, execute):
    project_file = os.path.join(settings.BASE_DIR, "manage.py")
    code = (
        "import os\n"
        f"for path in ['/etc/passwd', {project_file!r}, {str(settings.MEDIA_ROOT)!r}, '/root/.bashrc',\n"
        f"             {str(settings.VAR_DIR)!r}]:\n"
        "    print('exists' if os.path.exists(path) else 'absent', path)\n"
        "for path in ['/usr/evil', '/evil', '/venv/evil', '/venv/lib/evil']:\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError:\n"
        "        print('refused', path)\n"
        "open('mine.txt', 'w').write('ok')\n"
        "open('/tmp/t.txt', 'w').write('ok')\n"
        "print('own dir and /tmp writable')\n"
        "print('uid', os.getuid(), 'env', sorted(os.environ))\n"
    )
    run = execute(runner, code)
    assert run.status == JobStatus.SUCCEEDED, log_lines(run)
    lines = log_lines(run)
    assert all(line.startswith("absent") for line in lines[:5]), lines
    assert all(line.startswith("refused") for line in lines[5:9]), lines[5:9]
    assert lines[9] == "own dir and /tmp writable"
    assert "SECRET" not in lines[10] and "DJANGO" not in lines[10] and lines[10].startswith("uid 1000")


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(10)
    yield server.getsockname()[1]
    server.close()


NET_CODE = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=3).close()\n"
    "    print('connected')\n"
    "except OSError as exc:\n"
    "    print('refused', type(exc).__name__)\n"
)


def test_network_refused_without_permission(runner, execute, listener):
    run = execute(runner, NET_CODE, args=[str(listener)])
    assert not run.network
    assert log_lines(run)[0].startswith("refused")


def test_network_granted_but_not_asked_for_is_off(runner, execute, listener):
    services.script_access_set(user=runner, network=True)
    run = execute(runner, NET_CODE, args=[str(listener)])
    assert not run.network
    assert log_lines(run)[0].startswith("refused")


def test_networked_run_cannot_reach_the_host_loopback(runner, execute, listener):
    """A networked run has its own namespace: the worker host's 127.0.0.1 is not its loopback."""
    services.script_access_set(user=runner, network=True)
    run = execute(runner, NET_CODE, args=[str(listener)], network=True)
    assert run.status == JobStatus.SUCCEEDED, log_lines(run)
    assert run.network
    assert log_lines(run) == ["refused ConnectionRefusedError"]


STUBBORN = (
    "import os, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "    while True:\n"
    "        time.sleep(0.05)\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    time.sleep(0.05)\n"
)


def test_cancel_kills_stubborn_script_and_its_setsid_child(runner, make_script):
    from scripts_runner import runner as runner_module

    script = make_script(runner, STUBBORN)
    run = services.script_run_create(script=script, user=runner)
    seen = {}
    # Other children of this test process (a live server/worker started by
    # earlier tests) are not the sandbox's.
    before = set(sandbox.descendants(os.getpid()))

    def cancel_when_ready():
        from django.db import connection

        try:
            wait_until(lambda: LogChunk.objects.filter(run=run, text__contains="ready").exists(), timeout=20)
            seen["pids"] = [pid for pid in sandbox.descendants(os.getpid()) if pid not in before]
            services.script_run_cancel(run=ScriptRun.objects.get(pk=run.pk), by=runner)
        finally:
            connection.close()

    thread = threading.Thread(target=cancel_when_ready)
    thread.start()
    runner_module.script_run_execute(pk=run.pk)
    thread.join()
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and run.end_reason == EndReason.CANCELLED
    assert run.cancelled_by == runner and run.exit_code == 128 + 9
    assert len(seen["pids"]) >= 3  # bwrap, sandbox init, script, its child

    def gone(pid):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().split(")")[-1].split()[0] == "Z"
        except OSError:
            return True

    wait_until(lambda: all(gone(pid) for pid in seen["pids"]), timeout=5, message="sandbox processes gone")


def test_cancel_of_queued_run_never_starts(runner, make_script):
    from scripts_runner import runner as runner_module

    run = services.script_run_create(script=make_script(runner, "print(1)\n"), user=runner)
    services.script_run_cancel(run=run, by=runner)
    runner_module.script_run_execute(pk=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and run.end_reason == EndReason.CANCELLED and run.started_at is None


def test_sandbox_unavailable_refuses_runs_unless_allowed(runner, make_script, settings):
    from django.core.exceptions import ValidationError

    settings.SCRIPTS_RUNNER_BWRAP = "/nonexistent/bwrap"
    sandbox.probe.cache_clear()
    try:
        script = make_script(runner, "print('plain')\n")
        with pytest.raises(ValidationError, match="sandbox is not available"):
            services.script_run_create(script=script, user=runner)
        settings.SCRIPTS_RUNNER_ALLOW_UNSANDBOXED = True
        run = services.script_run_create(script=script, user=runner)
        assert not run.sandboxed
        from scripts_runner import runner as runner_module

        runner_module.script_run_execute(pk=run.pk)
        run.refresh_from_db()
        assert run.status == JobStatus.SUCCEEDED and log_lines(run) == ["plain"]
    finally:
        sandbox.probe.cache_clear()


def test_recovery_marks_lost_run_worker_lost(runner, make_script):
    from datetime import timedelta

    from django.utils import timezone

    from core import recovery as core_recovery
    from core import services as core_services

    run = services.script_run_create(script=make_script(runner, "print(1)\n"), user=runner)
    assert core_services.job_start(job=run)
    ScriptRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    counts = core_recovery.jobs_recover(stale_seconds=60)
    run.refresh_from_db()
    assert counts["worker_lost"] >= 1
    assert run.status == JobStatus.FAILED and run.end_reason == EndReason.WORKER_LOST
    assert run.end_description == "Worker lost"


def test_a_started_run_is_never_requeued_by_recovery(runner, make_script):
    from datetime import timedelta

    from django.utils import timezone

    from core import recovery as core_recovery

    # A run whose task vanished before it started never ran: it is queued again (job_start lets one task run it).
    run = services.script_run_create(script=make_script(runner, "print(1)\n"), user=runner)
    ScriptRun.objects.filter(pk=run.pk).update(task_id="vanished", created_at=timezone.now() - timedelta(minutes=10))
    core_recovery.jobs_recover(stale_seconds=60)
    run.refresh_from_db()
    assert run.status == JobStatus.QUEUED and run.task_id != "vanished"
    # A run that started and lost its worker is failed, never run again: scripts may not be safe to run twice.
    past = timezone.now() - timedelta(minutes=10)
    ScriptRun.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, started_at=past, heartbeat_at=past)
    counts = core_recovery.jobs_recover(stale_seconds=60)
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and run.requeues == 0
    assert counts["worker_lost"] == 1 and counts["requeued"] == 0


def test_file_size_limit(runner, execute, settings):
    settings.SCRIPTS_RUNNER_FILE_BYTES = 1024 * 1024
    run = execute(runner, "with open('big.bin', 'wb') as fh:\n    fh.write(b'x' * (2 * 1024 * 1024))\n")
    assert run.status == JobStatus.FAILED and run.end_reason == EndReason.FILE_SIZE


def test_open_files_limit(runner, execute, settings):
    settings.SCRIPTS_RUNNER_OPEN_FILES = 32
    code = (
        "handles = []\n"
        "try:\n"
        "    for i in range(1000):\n"
        "        handles.append(open(f'f{i}', 'w'))\n"
        "except OSError as exc:\n"
        "    print('refused after', len(handles), exc.errno)\n"
    )
    run = execute(runner, code)
    line = log_lines(run)[0]
    assert line.startswith("refused after") and int(line.split()[2]) < 32 and line.endswith(" 24")


# --- memory cgroup: the run as a whole, not one process ------------------------------------

SPREAD_BOMB = (
    "import subprocess, sys\n"
    "child = 'import time\\nblock = b\"\\\\x01\" * ({mib} * 1024 * 1024)\\nprint(\"holding\", flush=True)\\ntime.sleep(3)\\n'\n"
    "procs = [subprocess.Popen([sys.executable, '-c', child]) for _ in range({children})]\n"
    "print('exit codes', [p.wait() for p in procs], flush=True)\n"
)


@pytest.fixture
def memory_cgroup():
    root = sandbox.memory_cgroup_root()
    if root is None:
        pytest.skip(f"no memory cgroup on this host: {sandbox.memory_cgroup_status['reason']}")
    return root


def test_memory_spread_over_child_processes_is_oom_killed(runner, execute, settings, memory_cgroup):
    # Each child holds 100 MiB, well under the 256 MiB address-space rlimit of a process (no
    # MemoryError anywhere), but 4 × 100 MiB of resident memory is over the run's limit.
    settings.SCRIPTS_RUNNER_MEMORY_BYTES = 256 * 1024 * 1024
    settings.SCRIPTS_RUNNER_WALL_SECONDS = 30
    runs_before = {n for n in os.listdir(memory_cgroup[0]) if n.startswith("run-")}  # e.g. a killed worker's
    run = execute(runner, SPREAD_BOMB.format(mib=100, children=4))
    assert run.status == JobStatus.FAILED and run.end_reason == EndReason.OUT_OF_MEMORY, (run.message, log_lines(run))
    assert not any("MemoryError" in line for line in log_lines(run, "stderr"))
    last = log_lines(run, "system")[-1]
    assert "out of memory" in last and "OOM killer" in last and "268,435,456" in last
    assert run.message.startswith("Out of memory")
    # the run's memory cgroup was removed after the run
    assert wait_until(lambda: {n for n in os.listdir(memory_cgroup[0]) if n.startswith("run-")} <= runs_before,
                      timeout=10)


def test_memory_spread_under_the_limit_succeeds(runner, execute, settings, memory_cgroup):
    settings.SCRIPTS_RUNNER_MEMORY_BYTES = 256 * 1024 * 1024
    settings.SCRIPTS_RUNNER_WALL_SECONDS = 30
    run = execute(runner, SPREAD_BOMB.format(mib=30, children=2))
    assert run.status == JobStatus.SUCCEEDED, log_lines(run)
    assert log_lines(run, "stdout")[-1] == "exit codes [0, 0]"


def test_memory_bomb_without_cgroup_falls_back_to_rlimit(runner, execute, settings):
    settings.SCRIPTS_RUNNER_MEMORY_CGROUP = ""
    sandbox.memory_cgroup_root.cache_clear()
    try:
        assert sandbox.memory_cgroup_root() is None
        assert "off" in sandbox.memory_cgroup_status["reason"]
        settings.SCRIPTS_RUNNER_MEMORY_BYTES = 512 * 1024 * 1024
        run = execute(runner, "blocks = []\nwhile True:\n    blocks.append(bytearray(32 * 1024 * 1024))\n")
        assert run.status == JobStatus.FAILED and run.end_reason == EndReason.OUT_OF_MEMORY
        assert "address space per process" in log_lines(run, "system")[-1]
    finally:
        sandbox.memory_cgroup_root.cache_clear()


# --- disk limit: the run directory is a size-limited tmpfs ------------------------------------


def test_disk_limit_on_the_run_directory(runner, execute, settings):
    settings.SCRIPTS_RUNNER_DISK_BYTES = 8 * 1024 * 1024
    code = (
        "import os\n"
        "print('script here', os.path.exists('job.py'), flush=True)\n"
        "chunk = b'x' * (1024 * 1024)\n"
        "n = 0\n"
        "while True:\n"
        "    with open(f'out-{n}.bin', 'wb') as fh:\n"  # many files, each under the file-size limit
        "        fh.write(chunk)\n"
        "    n += 1\n"
        "    print('wrote', n, flush=True)\n"
    )
    run = execute(runner, code)
    assert run.status == JobStatus.FAILED and run.end_reason == EndReason.DISK_LIMIT, log_lines(run)
    out = log_lines(run, "stdout")
    assert out[0] == "script here True" and 4 <= int(out[-1].split()[-1]) <= 8
    assert "disk limit" in log_lines(run, "system")[-1]
