"""The body of a script run, executed inside a django-q2 worker by `core.jobkit.job_execute`.

Reads both pipes without blocking (one selector loop), writes log lines to the
database in ordered chunks (every `flush_seconds`, every `flush_lines` lines,
and at most 50 ms after the previous write), checks the cancel flag every
`cancel_poll_seconds`, enforces wall time and the output cap, and stops the
sandbox with SIGTERM then SIGKILL. It never signals the worker itself.
"""

from __future__ import annotations

import fcntl
import logging
import os
import selectors
import shutil
import signal
import time
import uuid

from django.db.models import F
from django.utils import timezone

from core import services as core_services
from core.jobkit import job_execute
from core.recovery import INTERRUPTED
from core.workerhost import worker_stopping
from scripts_runner import conf, sandbox
from scripts_runner.doorbell import RunDoorbell
from scripts_runner.logsink import Block, LogSink
from scripts_runner.models import EndReason, LogChunk, ScriptRun

logger = logging.getLogger(__name__)

# Pending lines are written at most this long after the previous write: low
# latency for a trickle of lines, at most ~20 transactions a second.
MIN_FLUSH_INTERVAL = 0.05
READ_BYTES = 256 * 1024
PIPE_BYTES = 1024 * 1024
BATCH_PAUSE_SECONDS = 0.005
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class RunGone(Exception):
    """The run row was deleted while it ran (its script was deleted)."""


def chunk_rows(*, run: ScriptRun, blocks: list[Block], first_seq: int, first_line: int) -> list[LogChunk]:
    """One row per block (consecutive lines of one stream), numbered in order."""
    rows: list[LogChunk] = []
    line_no = first_line
    for stream, lines in blocks:
        if not lines:
            continue
        rows.append(LogChunk(run=run, seq=first_seq + len(rows), stream=stream, first_line=line_no,
                             line_count=len(lines), text="\n".join(lines)))
        line_no += len(lines)
    return rows


class LogWriter:
    def __init__(self, run: ScriptRun):
        self.run = run
        self.lines = run.output_lines
        self.last_flush = 0.0

    def write(self, blocks: list[Block], *, output_bytes: int, truncated: bool) -> None:
        self.last_flush = time.monotonic()
        rows = chunk_rows(run=self.run, blocks=blocks, first_seq=0, first_line=self.lines + 1)
        if not rows:
            return
        count = sum(row.line_count for row in rows)
        try:
            core_services.stream_append(
                owner=self.run, rows=rows, output_lines=F("output_lines") + count,
                output_bytes=output_bytes, truncated=truncated, heartbeat_at=timezone.now(),
            )
        except ScriptRun.DoesNotExist:
            raise RunGone() from None
        self.lines += count


def _cancel_state(run: ScriptRun) -> bool | None:
    """True when cancel was requested, None when the run row is gone."""
    row = ScriptRun.objects.filter(pk=run.pk).values_list("cancel_requested", flat=True).first()
    return row


def _classify(*, exit_code: int, stop_reason: str, sink: LogSink, cpu_limit: int, cpu_used: float,
              oom_killed: int = 0) -> str:
    if stop_reason:
        return stop_reason
    if oom_killed:
        # The run's memory cgroup went over its limit and the kernel killed a process of it.
        return EndReason.OUT_OF_MEMORY
    if exit_code == 0:
        return EndReason.EXITED
    if exit_code == 128 + signal.SIGXCPU or (exit_code == 128 + signal.SIGKILL and cpu_used >= cpu_limit):
        return EndReason.CPU_LIMIT
    if exit_code == 128 + signal.SIGXFSZ or any("[Errno 27] File too large" in line for line in sink.stderr_tail):
        # Python ignores SIGXFSZ, so the write fails with EFBIG instead of a signal.
        return EndReason.FILE_SIZE
    if any("[Errno 28] No space left on device" in line for line in sink.stderr_tail):
        # The run directory (and /tmp) are size-limited tmpfs mounts.
        return EndReason.DISK_LIMIT
    # The address-space limit makes allocations fail, which Python reports as MemoryError.
    # (A SIGKILL we did not send is left as "exited 137": a script may kill itself too.)
    if any(line.startswith("MemoryError") for line in sink.stderr_tail[-3:]):
        return EndReason.OUT_OF_MEMORY
    return EndReason.EXITED


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def _sweep_run_dirs(root) -> None:
    """Remove run directories a killed worker left behind (only ones older than any run can live)."""
    horizon = time.time() - conf.WALL_SECONDS - 600
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < horizon:
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue


def script_run_body(run: ScriptRun) -> None:
    """Execute one run; finishes the job itself with the right status and end reason."""
    from django.core.files.storage import default_storage

    _sweep_run_dirs(conf.RUN_ROOT)

    script = run.script
    try:
        with default_storage.open(script.file.name, "rb") as fh:
            code = fh.read()
    except FileNotFoundError:
        logger.error("run %s: the store does not hold %s", run.pk, script.file.name)
        core_services.job_fail(job=run, error=CODE_MISSING_ERROR, message="Script file missing",
                               end_reason=EndReason.INTERNAL_ERROR)
        return
    run_dir = conf.RUN_ROOT / f"{run.pk}-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir(parents=True, exist_ok=True)
    sink = LogSink(max_bytes=conf.OUTPUT_BYTES, max_line=conf.LINE_BYTES)
    writer = LogWriter(run)
    launch = None
    try:
        try:
            launch = sandbox.prepare(
                run_dir=run_dir, script_name=script.name, code=code, args=list(run.args), env=dict(run.env),
                network=run.network, sandboxed=run.sandboxed,
            )
            proc = sandbox.start(launch)
        except Exception as exc:
            # The detail (host paths, a traceback) goes to the worker's log only.
            logger.exception("sandbox failed to start for run %s", run.pk)
            _fail_sandbox(run=run, sink=sink, writer=writer, exc=exc)
            return
        _supervise(run=run, proc=proc, launch=launch, sink=sink, writer=writer)
    except RunGone:
        logger.info("run %s was deleted while running", run.pk)
    except Exception:
        # An internal failure of the runner: the user gets a plain message, the log the detail.
        logger.exception("run %s failed inside the runner", run.pk)
        _fail_internal(run=run, sink=sink, writer=writer)
    finally:
        if launch is not None:
            sandbox.release(launch)
            sandbox.network_stop(launch)
        shutil.rmtree(run_dir, ignore_errors=True)
        _log_retention(run)


SANDBOX_START_MESSAGE = "Sandbox could not start"
CODE_MISSING_ERROR = "The script's file is missing from storage; save its code again, then run it."
INTERNAL_ERROR_MESSAGE = "The run failed because of an internal error of the platform; administrators can see why in the worker's log"


def _fail_sandbox(*, run: ScriptRun, sink: LogSink, writer: LogWriter, exc: Exception | None = None) -> None:
    why = str(exc) if isinstance(exc, sandbox.SandboxUnavailable) and _plain(str(exc)) else ""
    text = f"the sandbox could not start: {why}" if why else "the sandbox could not start"
    sink.system(f"[{text}; administrators can see why in the worker's log]")
    writer.write(sink.take(), output_bytes=sink.total_bytes, truncated=sink.truncated)
    core_services.job_fail(job=run, error=text[:1].upper() + text[1:], message=SANDBOX_START_MESSAGE,
                           end_reason=EndReason.SANDBOX_ERROR)


def _fail_internal(*, run: ScriptRun, sink: LogSink, writer: LogWriter) -> None:
    try:
        sink.system(f"[{INTERNAL_ERROR_MESSAGE}]")
        writer.write(sink.take(), output_bytes=sink.total_bytes, truncated=sink.truncated)
    except Exception:
        logger.exception("could not write the end of run %s", run.pk)
    core_services.job_fail(job=run, error=INTERNAL_ERROR_MESSAGE, message="Internal error",
                           end_reason=EndReason.INTERNAL_ERROR)


def _plain(text: str) -> bool:
    """A message fit for users: one line, no host path."""
    return "\n" not in text and "/" not in text


def _log_retention(run: ScriptRun) -> None:
    from scripts_runner import services

    try:
        services.script_run_logs_budget_enforce(owner_id=run.owner_id, keep_run_id=run.pk)
    except Exception:
        logger.exception("could not apply the log budget of user %s", run.owner_id)


def _supervise(*, run, proc, launch, sink: LogSink, writer: LogWriter) -> None:
    cpu_before = _children_cpu()
    started = time.monotonic()
    wall = conf.WALL_SECONDS
    poll = conf.CANCEL_POLL_SECONDS
    grace = conf.KILL_GRACE_SECONDS
    flush_seconds = conf.FLUSH_SECONDS
    flush_lines = conf.FLUSH_LINES

    selector = selectors.DefaultSelector()
    streams = {proc.stdout.fileno(): "stdout", proc.stderr.fileno(): "stderr"}
    for fd in streams:
        os.set_blocking(fd, False)
        try:  # a roomy pipe lets the script keep writing while we batch reads
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass
        selector.register(fd, selectors.EVENT_READ)
    open_fds = set(streams)

    stop_reason = ""
    oom_killed = 0
    kill_at: float | None = None
    next_cancel_check = 0.0
    bell = None
    if RunDoorbell.available():
        bell = RunDoorbell(core_services.stream_group(kind=run.kind, pk=run.pk))
        bell.start()

    def request_stop(reason: str) -> None:
        nonlocal stop_reason, kill_at
        if stop_reason:
            return
        stop_reason = reason
        sandbox.signal_tree(proc, signal.SIGTERM, include_root=not launch.sandboxed)
        kill_at = time.monotonic() + grace

    try:
        while True:
            got_data = False
            read_bytes = 0
            if open_fds:
                for key, _ in selector.select(timeout=0.02):
                    try:
                        data = os.read(key.fd, READ_BYTES)
                    except BlockingIOError:
                        continue
                    if data:
                        got_data = True
                        read_bytes += len(data)
                        sink.feed(streams[key.fd], data)
                    else:
                        selector.unregister(key.fd)
                        open_fds.discard(key.fd)
            else:
                time.sleep(0.02)
            now = time.monotonic()

            if sink.over_cap and not stop_reason:
                request_stop(EndReason.OUTPUT_LIMIT)
            # Our own log writes ring the same group, so a bell only brings the next
            # check forward to at most every 20 ms.
            if now >= next_cancel_check or (bell is not None and bell.rung.is_set()
                                            and now >= next_cancel_check - poll + 0.02):
                if bell is not None:
                    bell.rung.clear()
                next_cancel_check = now + poll
                state = _cancel_state(run)
                if state is None:
                    request_stop(EndReason.CANCELLED)
                    raise RunGone()
                if state and not stop_reason:
                    request_stop(EndReason.CANCELLED)
                if launch.memory_cgroup and not stop_reason:
                    # The OOM killer took one process of the run (v1 kills one, v2 with
                    # memory.oom.group the whole cgroup): end the whole run "out of memory".
                    oom_killed = sandbox.oom_kills(launch)
                    if oom_killed:
                        request_stop(EndReason.OUT_OF_MEMORY)
            if not stop_reason and now - started > wall:
                request_stop(EndReason.TIMED_OUT)
            if not stop_reason and worker_stopping():
                # The worker cluster got SIGTERM: stop the script now, keep its output, end the run
                # interrupted (a script may not be safe to run twice: never queued again).
                request_stop(EndReason.WORKER_STOPPED)
            if kill_at is not None and now >= kill_at:
                sandbox.signal_tree(proc, signal.SIGKILL, include_root=True)
                sandbox.cgroups_kill(launch)
                kill_at = None

            if sink.pending and (
                sink.pending_lines >= flush_lines
                or now - sink.oldest_pending >= flush_seconds
                or now - writer.last_flush >= MIN_FLUSH_INTERVAL
            ):
                writer.write(sink.take(), output_bytes=sink.total_bytes, truncated=sink.truncated or sink.over_cap)

            if not open_fds and proc.poll() is not None:
                break
            if got_data and read_bytes < READ_BYTES // 4:
                # A trickle of small writes (an unbuffered script printing fast): let
                # the pipe fill a little instead of waking once per line.
                time.sleep(BATCH_PAUSE_SECONDS)
    except BaseException:
        sandbox.signal_tree(proc, signal.SIGKILL, include_root=True)
        sandbox.cgroups_kill(launch)
        proc.wait()
        raise
    finally:
        selector.close()
        if bell is not None:
            bell.stop()

    returncode = proc.wait()
    sandbox.cgroups_kill(launch)
    if not stop_reason and worker_stopping():
        stop_reason = EndReason.WORKER_STOPPED  # the group's SIGTERM reached the script first
    exit_code = 128 - returncode if returncode < 0 else returncode
    cpu_used = _children_cpu() - cpu_before
    sink.close()
    oom_killed = oom_killed or sandbox.oom_kills(launch)
    if not stop_reason and not oom_killed and sandbox.sandbox_started(launch) is False:
        # bwrap never started the script (or the exec chain could not join the run's cgroups).
        logger.error("the sandbox of run %s did not start (exit %s); its stderr: %s", run.pk, exit_code,
                     sink.stderr_tail)
        _fail_sandbox(run=run, sink=sink, writer=writer)
        return
    reason = _classify(exit_code=exit_code, stop_reason=stop_reason, sink=sink,
                       cpu_limit=launch.limits.cpu_seconds, cpu_used=cpu_used, oom_killed=oom_killed)
    if reason == EndReason.TIMED_OUT:
        sink.system(f"[wall-time limit of {wall:g} s reached: the run was stopped]")
    elif reason == EndReason.CPU_LIMIT:
        sink.system(f"[CPU-time limit of {launch.limits.cpu_seconds} s reached]")
    elif reason == EndReason.OUT_OF_MEMORY and oom_killed:
        sink.system(f"[out of memory: the run's processes together used more than its memory limit of "
                    f"{launch.limits.memory_bytes:,} bytes; the kernel's OOM killer killed {oom_killed} "
                    f"process(es) and the run was stopped]")
    elif reason == EndReason.OUT_OF_MEMORY:
        sink.system(f"[out of memory: the limit is {launch.limits.memory_bytes:,} bytes of address space per process]")
    elif reason == EndReason.DISK_LIMIT:
        sink.system(f"[disk limit reached: the run directory /sandbox holds at most {launch.limits.disk_bytes:,} "
                    f"bytes and /tmp {launch.limits.tmp_bytes:,} bytes]")
    elif reason == EndReason.WORKER_STOPPED:
        sink.system("[the worker stopped: the run was interrupted; start it again to run it]")
    elif reason == EndReason.FILE_SIZE:
        sink.system(f"[file-size limit of {launch.limits.file_bytes:,} bytes reached]")
    writer.write(sink.take(), output_bytes=sink.total_bytes, truncated=sink.truncated or sink.over_cap)

    fields = {"exit_code": exit_code, "end_reason": reason}
    if reason == EndReason.CANCELLED:
        run.refresh_from_db(fields=["cancelled_by"])
        who = f" by {run.cancelled_by}" if run.cancelled_by_id else ""
        core_services.job_mark_cancelled(job=run, message=f"Cancelled{who}", **fields)
    elif reason == EndReason.WORKER_STOPPED:
        message, error = INTERRUPTED
        core_services.job_fail(job=run, error=error, message=message, **fields)
    elif reason == EndReason.EXITED and exit_code == 0:
        core_services.job_succeed(job=run, message="Exited with code 0", **fields)
    else:
        label = EndReason(reason).label
        message = f"Exited with code {exit_code}" if reason == EndReason.EXITED else f"{label} (exit code {exit_code})"
        core_services.job_fail(job=run, error=message, message=message, **fields)


def script_run_execute(*, pk: int) -> ScriptRun | None:
    """Entry point of the worker task."""
    return job_execute(model=ScriptRun, pk=pk, body=script_run_body)

