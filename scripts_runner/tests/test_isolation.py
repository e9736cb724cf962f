"""What a hostile script meets: an unprivileged host uid, seccomp, no nested user namespaces, capped
/dev/shm and CPU, escaped output, plain errors — real runs, inspected from the host while they run.
"""

import errno
import json
import logging
import os
import threading

import pytest
from django.conf import settings as django_settings

from core import services as core_services
from core.models import JobStatus
from tests.support import wait_until
from scripts_runner import conf, runner as runner_module, sandbox, seccomp, services
from scripts_runner.models import EndReason, LogChunk, ScriptRun
from scripts_runner.sandbox import cgroups as sandbox_cgroups, run_uid

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sandbox_available")]

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="runs get a uid of their own only from a root worker")


def log_lines(run, stream=None):
    lines = []
    for chunk in LogChunk.objects.filter(run=run).order_by("seq"):
        if stream is None or chunk.stream == stream:
            lines.extend(chunk.lines())
    return lines


def status_uids(pid: int) -> list[int]:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no Uid line for {pid}")


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def run_and_inspect(owner, make_script, code, inspect, *, args=None):
    """Start a run inline; once it printed 'ready', call `inspect(run, new_pids)` from another thread, then cancel."""
    script = make_script(owner, code)
    run = services.script_run_create(script=script, user=owner, args=args)
    before = set(sandbox.descendants(os.getpid()))
    seen = {}

    def watch():
        from django.db import connection

        try:
            wait_until(lambda: LogChunk.objects.filter(run=run, text__contains="ready").exists(), timeout=30)
            pids = [pid for pid in sandbox.descendants(os.getpid()) if pid not in before]
            seen["result"] = inspect(ScriptRun.objects.get(pk=run.pk), pids)
        except BaseException as exc:  # reported by the test thread
            seen["error"] = exc
        finally:
            services.script_run_cancel(run=ScriptRun.objects.get(pk=run.pk), by=owner)
            connection.close()

    thread = threading.Thread(target=watch)
    thread.start()
    runner_module.script_run_execute(pk=run.pk)
    thread.join()
    if "error" in seen:
        raise seen["error"]
    run.refresh_from_db()
    return run, seen["result"]


def run_dir_of(run) -> str:
    [name] = [n for n in os.listdir(conf.RUN_ROOT) if n.startswith(f"{run.pk}-")]
    return os.path.join(conf.RUN_ROOT, name)


WAIT_CODE = (
    "import os, time\n"
    "open('made.txt', 'w').write('mine')\n"
    "print('ready', os.getuid(), flush=True)\n"
    "while True:\n"
    "    time.sleep(0.05)\n"
)


# --- unprivileged ----------------------------------------------------------------------------


@needs_root
@pytest.mark.parametrize("disk_bytes", [0, 8 * 1024 * 1024], ids=["host-run-directory", "tmpfs-run-directory"])
def test_sandboxed_processes_are_not_host_root(runner, make_script, settings, disk_bytes):
    settings.SCRIPTS_RUNNER_DISK_BYTES = disk_bytes
    first, last = conf.RUN_UIDS

    def inspect(run, pids):
        uids = {pid: status_uids(pid) for pid in pids if cmdline(pid)}
        script_pids = [pid for pid in uids if "job.py" in cmdline(pid) and "python" in cmdline(pid)]
        made = None
        if disk_bytes == 0:  # the host directory is bind-mounted: the file is there, owned by the run's uid
            made = os.stat(os.path.join(run_dir_of(run), "work", "made.txt"))
        return uids, script_pids, made

    run, (uids, script_pids, made) = run_and_inspect(runner, make_script, WAIT_CODE, inspect)
    assert run.status == JobStatus.CANCELLED
    assert log_lines(run, "stdout")[0] == "ready 1000"  # uid 1000 inside
    assert script_pids, uids
    # Every process of the run (bwrap's own included), not just the script, has one unprivileged uid.
    host_uids = {uid for values in uids.values() for uid in values}
    assert len(host_uids) == 1, uids
    run_uid = host_uids.pop()
    assert first <= run_uid <= last
    if made is not None:
        assert (made.st_uid, made.st_gid) == (run_uid, run_uid)


@needs_root
def test_two_live_runs_have_different_uids(runner, make_script):
    from django.db import connection

    first_run = services.script_run_create(script=make_script(runner, WAIT_CODE, name="other.py"), user=runner)

    def other():
        try:
            runner_module.script_run_execute(pk=first_run.pk)
        finally:
            connection.close()

    def inspect(run, pids):
        wait_until(lambda: LogChunk.objects.filter(run=first_run, text__contains="ready").exists(), timeout=30)
        pids = sandbox.descendants(os.getpid())
        return ({status_uids(pid)[0] for pid in pids if "job.py" in cmdline(pid)},
                {status_uids(pid)[0] for pid in pids if "other.py" in cmdline(pid)})

    thread = threading.Thread(target=other)
    thread.start()
    try:
        _, (mine, theirs) = run_and_inspect(runner, make_script, WAIT_CODE, inspect)
    finally:
        services.script_run_cancel(run=ScriptRun.objects.get(pk=first_run.pk), by=runner)
        thread.join()
    assert len(mine) == 1 and len(theirs) == 1 and mine != theirs


def test_nested_user_namespaces_are_refused(runner, execute):
    code = (
        "import ctypes, errno, os, subprocess\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "CLONE_NEWUSER = 0x10000000\n"
        # clone() itself is allowed by the filter: the user namespace limit refuses it.
        "pid = libc.syscall(56, CLONE_NEWUSER | 17, 0, 0, 0, 0)\n"
        "if pid == 0:\n"
        "    os._exit(0)\n"
        "print('clone', pid, errno.errorcode.get(ctypes.get_errno()))\n"
        "r = libc.unshare(CLONE_NEWUSER)\n"
        "print('unshare', r, errno.errorcode.get(ctypes.get_errno()))\n"
        "print('unshare -U', subprocess.run(['unshare', '-U', 'true'], capture_output=True).returncode)\n"
    )
    run = execute(runner, code)
    assert run.status == JobStatus.SUCCEEDED, log_lines(run)
    assert log_lines(run, "stdout") == ["clone -1 ENOSPC", "unshare -1 ENOTRECOVERABLE", "unshare -U 1"]


# --- seccomp ----------------------------------------------------------------------------------

SYSCALL_CODE = (
    "import ctypes, json, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "for name, nr in json.loads(sys.argv[1]).items():\n"
    "    ctypes.set_errno(0)\n"
    "    r = libc.syscall(nr, 0, 0, 0, 0, 0, 0)\n"
    "    print(name, r, ctypes.get_errno(), flush=True)\n"
)


def test_seccomp_refuses_each_call_with_its_own_errno(runner, execute):
    numbers = seccomp.syscall_numbers()
    for name in ("ptrace", "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "unshare", "setns",
                 "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "process_vm_readv",
                 "process_vm_writev", "kexec_load", "init_module", "finit_module", "delete_module"):
        assert name in numbers
    run = execute(runner, SYSCALL_CODE, args=[json.dumps(numbers)])
    assert run.status == JobStatus.SUCCEEDED, log_lines(run)
    results = {line.split()[0]: line.split()[1:] for line in log_lines(run, "stdout")}
    assert set(results) == set(numbers)
    assert seccomp.REFUSED_ERRNO not in (errno.EPERM, errno.ENOSYS, errno.EINVAL)
    for name, (ret, err) in results.items():
        assert (ret, int(err)) == ("-1", seccomp.REFUSED_ERRNO), name


def test_calls_outside_the_filter_keep_their_own_errors(runner, execute):
    # sethostname needs CAP_SYS_ADMIN: refused by the kernel (EPERM), not by the filter.
    import pyseccomp

    numbers = {name: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) for name in ("sethostname", "getppid")}
    run = execute(runner, SYSCALL_CODE, args=[json.dumps(numbers)])
    results = {line.split()[0]: line.split()[1:] for line in log_lines(run, "stdout")}
    assert results["sethostname"] == ["-1", str(errno.EPERM)]
    assert results["getppid"][0] != "-1"


# --- /dev and CPU --------------------------------------------------------------------------


def test_dev_shm_is_sized_and_dev_read_only(runner, execute, settings):
    settings.SCRIPTS_RUNNER_SHM_BYTES = 4 * 1024 * 1024
    code = (
        "import os\n"
        "st = os.statvfs('/dev/shm')\n"
        "print('size', st.f_blocks * st.f_frsize)\n"
        "written = 0\n"
        "try:\n"
        "    with open('/dev/shm/fill', 'wb') as fh:\n"
        "        for _ in range(16):\n"
        "            fh.write(b'x' * (1024 * 1024))\n"
        "            fh.flush()\n"
        "            written += 1\n"
        "    print('wrote everything')\n"
        "except OSError as exc:\n"
        "    print('refused after', written, exc.errno)\n"
        "for path in ['/dev/evil', '/dev/shm2']:\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print('refused', path, exc.errno)\n"
        "open('/dev/null', 'w').write('fine')\n"
        "print('dev null ok')\n"
    )
    run = execute(runner, code)
    assert run.status == JobStatus.SUCCEEDED, log_lines(run)
    out = log_lines(run, "stdout")
    assert out[0] == f"size {4 * 1024 * 1024}"
    assert out[1].startswith("refused after") and int(out[1].split()[2]) < 5 and out[1].endswith(f" {errno.ENOSPC}")
    assert out[2:] == [f"refused /dev/evil {errno.EROFS}", f"refused /dev/shm2 {errno.EROFS}", "dev null ok"]


BUSY_CODE = (
    "import resource, subprocess, sys\n"
    # Busy until the test saw the quota act (it drops a 'stop' file), at most 2 s of CPU each.
    "busy = ('import os, time\\n'\n"
    "        'while time.process_time() < 2:\\n'\n"
    "        '    if os.path.exists(\"stop\"):\\n'\n"
    "        '        break\\n'\n"
    "        '    for _ in range(20000):\\n'\n"
    "        '        pass\\n')\n"
    "procs = [subprocess.Popen([sys.executable, '-c', busy]) for _ in range(2)]\n"
    "print('codes', [p.wait() for p in procs])\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print('cpu', usage.ru_utime + usage.ru_stime)\n"
)


@pytest.mark.parametrize("quota", [0.5, 0.05])
def test_cpu_quota_holds_two_busy_processes_to_their_share(runner, execute, settings, quota):
    root = sandbox.cpu_cgroup_root()
    if root is None:
        pytest.skip(f"no CPU cgroup on this host: {sandbox.cpu_cgroup_status['reason']}")
    settings.SCRIPTS_RUNNER_CPU_QUOTA = quota
    settings.SCRIPTS_RUNNER_WALL_SECONDS = 120
    settings.SCRIPTS_RUNNER_DISK_BYTES = 0  # the run directory is the host's: the test can drop 'stop' there
    directory, version = root
    before = set(os.listdir(directory))
    runs_before = set(os.listdir(conf.RUN_ROOT))
    seen = {"stat": {}}
    stop = threading.Event()

    def read_stat(path):
        text = open(os.path.join(path, "cpu.stat")).read()
        return {k: int(v) for k, v in (line.split() for line in text.splitlines())}

    def ours(name):
        # The cpu hierarchy is the host's: other test processes' runs have cgroups there too.
        try:
            pids = [int(x) for x in open(os.path.join(directory, name, "cgroup.procs")).read().split()]
        except OSError:
            return False
        return any("job.py" in cmdline(pid) for pid in set(pids) & set(sandbox.descendants(os.getpid())))

    def watch():
        path = None
        while not stop.is_set() and path is None:
            new = [n for n in os.listdir(directory) if n.startswith("run-") and n not in before and ours(n)]
            path = os.path.join(directory, new[0]) if new else None
            stop.wait(0.005)
        if path is None:
            return
        try:
            if version == 2:
                seen["quota"] = open(os.path.join(path, "cpu.max")).read().split()
            else:
                seen["quota"] = [open(os.path.join(path, name)).read().strip()
                                 for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us")]
            while not stop.is_set():
                seen["stat"] = read_stat(path)
                if seen["stat"].get("nr_throttled", 0) >= 3 and "stopped" not in seen:
                    [run_dir] = [n for n in os.listdir(conf.RUN_ROOT) if n not in runs_before]
                    with open(os.path.join(conf.RUN_ROOT, run_dir, "work", "stop"), "w"):
                        seen["stopped"] = True
                stop.wait(0.02)
        except OSError:  # removed after the run: the last reading is the total
            pass

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        run = execute(runner, BUSY_CODE)
    finally:
        stop.set()
        thread.join()
    assert run.status == JobStatus.SUCCEEDED, log_lines(run)
    out = log_lines(run, "stdout")
    assert out[0] == "codes [0, 0]"
    cpu = float(out[1].split()[1])
    assert seen["quota"] == [str(int(quota * 100_000)), "100000"]
    stat = seen["stat"]
    # The run's two processes wanted two cores: within the periods the run was runnable it got
    # at most its quota (plus the slack of a slice). Without a quota there are no periods at all.
    assert stat["nr_periods"] > 0 and cpu <= stat["nr_periods"] * quota * 0.1 * 1.1 + 0.05, (cpu, stat)
    if quota < 0.1:
        # So small a share is exceeded even on a host too loaded to give the run half a core:
        # the kernel must have throttled it.
        assert stat.get("nr_throttled", 0) >= 3, stat


# --- unsandboxed mode ---------------------------------------------------------------------------


@pytest.fixture
def unsandboxed(settings):
    settings.SCRIPTS_RUNNER_BWRAP = "/nonexistent/bwrap"
    settings.SCRIPTS_RUNNER_ALLOW_UNSANDBOXED = True
    sandbox.probe.cache_clear()
    yield
    sandbox.probe.cache_clear()


@needs_root
def test_unsandboxed_runs_drop_to_an_unprivileged_uid(runner, make_script, unsandboxed):
    first, last = conf.RUN_UIDS
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"  # a double-forked, setsid'd child that outlives the script
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        while True:\n"
        "            time.sleep(0.05)\n"
        "    os._exit(0)\n"
        "open('made.txt', 'w').write('mine')\n"
        "print('ready', os.getuid(), os.getgid(), os.getgroups(), flush=True)\n"
        "while True:\n"
        "    time.sleep(0.05)\n"
    )

    def inspect(run, pids):
        made = os.stat(os.path.join(run_dir_of(run), "work", "made.txt"))
        uids = {pid: status_uids(pid) for pid in pids if "job.py" in cmdline(pid)}
        return made, uids

    run, (made, uids) = run_and_inspect(runner, make_script, code, inspect)
    assert not run.sandboxed and run.status == JobStatus.CANCELLED
    line = log_lines(run, "stdout")[0].split(maxsplit=3)
    uid = int(line[1])
    assert first <= uid <= last and line[2] == str(uid) and line[3] == "[]"
    assert (made.st_uid, made.st_gid) == (uid, uid)
    assert uids and all(values == [uid] * 4 for values in uids.values()), uids
    # Nothing of the run is left, not even the child that escaped its process group.
    assert run_uid._uid_processes(uid) == []


def test_unsandboxed_mode_refuses_networked_runs(runner, make_script, unsandboxed):
    from django.core.exceptions import ValidationError

    services.script_access_set(user=runner, network=True)
    with pytest.raises(ValidationError, match="Networked runs need the sandbox"):
        services.script_run_create(script=make_script(runner, "print(1)\n"), user=runner, network=True)
    assert not ScriptRun.objects.exists()


# --- output that would break a database -----------------------------------------------------------


def test_nul_and_invalid_utf8_are_stored_escaped_and_the_run_succeeds(runner, execute):
    code = (
        "import sys\n"
        "print('before', flush=True)\n"
        "sys.stdout.buffer.write(b'a\\x00b\\n\\xff\\xfe bad\\n')\n"
        "sys.stdout.buffer.flush()\n"
        "sys.stderr.buffer.write(b'err \\x00\\n')\n"
        "sys.stderr.buffer.flush()\n"
        "print('after', flush=True)\n"
    )
    run = execute(runner, code)
    assert run.status == JobStatus.SUCCEEDED and run.end_reason == EndReason.EXITED, (run.message, run.error)
    assert log_lines(run, "stdout") == ["before", "a\\x00b", "\\xff\\xfe bad", "after"]
    assert log_lines(run, "stderr") == ["err \\x00"]


# --- errors users see -------------------------------------------------------------------------------


def _assert_plain(text: str) -> None:
    assert "Traceback" not in text and "/" not in text, text
    assert str(django_settings.BASE_DIR) not in text


def test_internal_failure_shows_a_plain_message_and_logs_the_detail(runner, execute, monkeypatch, caplog):
    secret_path = f"{django_settings.BASE_DIR}/scripts_runner/runner.py"

    def broken(**kwargs):
        raise RuntimeError(f"unexpected state in {secret_path}")

    monkeypatch.setattr(runner_module, "_classify", broken)
    with caplog.at_level(logging.ERROR, logger="scripts_runner.runner"):
        run = execute(runner, "print('hello')\n")
    assert run.status == JobStatus.FAILED and run.end_reason == EndReason.INTERNAL_ERROR
    for text in (run.error, run.message, run.end_description, *log_lines(run, "system")):
        _assert_plain(text)
    assert log_lines(run, "stdout") == ["hello"]  # what the script printed is kept
    assert any(secret_path in (r.exc_text or "") or secret_path in r.getMessage() for r in caplog.records)


def test_sandbox_start_failure_shows_a_plain_message(runner, execute, monkeypatch, caplog):
    def refuse(launch):
        raise FileNotFoundError(2, "No such file or directory", "/root/.hidden/bwrap")

    monkeypatch.setattr(sandbox, "start", refuse)
    with caplog.at_level(logging.ERROR, logger="scripts_runner.runner"):
        run = execute(runner, "print('never')\n")
    assert run.status == JobStatus.FAILED and run.end_reason == EndReason.SANDBOX_ERROR
    for text in (run.error, run.message, *log_lines(run)):
        _assert_plain(text)
    assert any("/root/.hidden/bwrap" in (r.exc_text or "") for r in caplog.records)


def test_cgroup_join_failure_is_a_sandbox_error_without_host_paths(runner, execute, monkeypatch):
    real = sandbox_cgroups._pids_memory_cgroup_create

    def broken(launch):
        real(launch)
        sandbox.cgroups_remove(launch)
        launch.cgroup = "/sys/fs/cgroup/pids/scripts_runner/run-gone-away"  # a cgroup that does not exist

    monkeypatch.setattr(sandbox_cgroups, "_pids_memory_cgroup_create", broken)
    run = execute(runner, "print('never')\n")
    assert run.status == JobStatus.FAILED and run.end_reason == EndReason.SANDBOX_ERROR, (run.message, log_lines(run))
    assert "never" not in log_lines(run)
    for text in (run.error, run.message, *log_lines(run)):
        _assert_plain(text)


def test_sandbox_unavailable_message_has_no_detail(runner, make_script, settings):
    from django.core.exceptions import ValidationError

    settings.SCRIPTS_RUNNER_BWRAP = "/nonexistent/bwrap"
    sandbox.probe.cache_clear()
    try:
        with pytest.raises(ValidationError) as caught:
            services.script_run_create(script=make_script(runner, "print(1)\n"), user=runner)
        message = " ".join(caught.value.messages)
        _assert_plain(message)
        assert "nonexistent" not in message and "bwrap:" not in message
    finally:
        sandbox.probe.cache_clear()


# --- stored log per user ---------------------------------------------------------------------------


def test_log_budget_removes_oldest_finished_logs_first_never_a_running_one(runner, execute, make_script, settings,
                                                                          auth_client, client):
    settings.SCRIPTS_RUNNER_LOG_BYTES_PER_USER = 3000
    line = "print('x' * 1199)\n"  # 1,200 bytes of output
    oldest = execute(runner, line, name="a.py")
    middle = execute(runner, line, name="b.py")
    assert not ScriptRun.objects.filter(log_removed_at__isnull=False).exists()  # 2,400 bytes fit

    # A run that is still running, with 5,000 bytes stored through the runner's own writer.
    live = services.script_run_create(script=make_script(runner, "print(1)\n", name="live.py"), user=runner)
    assert core_services.job_start(job=live)
    live.refresh_from_db()
    runner_module.LogWriter(live).write([("stdout", ["y" * 999] * 5)], output_bytes=5000, truncated=False)

    newest = execute(runner, line, name="c.py")
    for run in (oldest, middle, live, newest):
        run.refresh_from_db()
    # Over budget (1,200 × 3 + 5,000): the oldest finished logs go first; the live run and the
    # run that just ended are kept even though the total is still over.
    assert oldest.log_removed_at and middle.log_removed_at
    assert not LogChunk.objects.filter(run__in=[oldest, middle]).exists()
    assert live.log_removed_at is None and log_lines(live) == ["y" * 999] * 5
    assert newest.log_removed_at is None and log_lines(newest) == ["x" * 1199]
    assert oldest.status == JobStatus.SUCCEEDED  # the run itself stays
    # The owner is told, on the API and on the run page.
    body = auth_client(runner).get(f"/api/runs/{oldest.pk}/").json()
    assert body["log_removed_at"] and auth_client(runner).get(f"/api/runs/{newest.pk}/").json()["log_removed_at"] is None
    client.force_login(runner)
    page = client.get(oldest.get_absolute_url()).content.decode()
    assert 'data-testid="log-removed"' in page and "oldest first" in page
