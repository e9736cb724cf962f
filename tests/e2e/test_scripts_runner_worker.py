"""Script runs through a real django-q2 worker and a real ASGI server.

Covers what only real processes show: live lines over the websocket in order,
cancel of a stubborn process tree with the worker free at once, and recovery
after the worker is killed mid-run.
"""

import asyncio
import json
import os
import time
import uuid
from datetime import timedelta

import pytest
import websockets
from django.utils import timezone

from core import recovery as core_recovery
from core.models import JobStatus
from tests.support import api_token, token_header, wait_until
from scripts_runner import services
from scripts_runner.models import EndReason, LogChunk, ScriptRun

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _sandbox_available():
    from scripts_runner.tests.conftest import require_sandbox

    require_sandbox()


def marker_processes(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line carries `marker`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{name}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != b"Z":
            found.append(int(name))
    return found


async def collect(url: str, token: str, timeout: float = 60.0) -> list[dict]:
    received = []
    async with websockets.connect(url, open_timeout=10, max_size=None, additional_headers=token_header(token)) as ws:
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=deadline - time.monotonic()))
            received.append(message)
            if message["type"] == "end":
                return received


@pytest.fixture
def alice(user):
    services.script_access_set(user=user, run=True)
    return user


def start(user, code: str, *, args=None, name="job.py") -> ScriptRun:
    script = services.script_create(owner=user, name=name, code=code.encode())
    return services.script_run_create(script=script, user=user, args=args)


def test_heavy_output_arrives_in_order_over_websocket(live_platform, alice):
    code = (
        "import sys\n"
        "for i in range(20000):\n"
        "    print(f'line {i}')\n"
        "    if i % 2000 == 0:\n"
        "        print(f'warn {i}', file=sys.stderr)\n"
    )
    run = start(alice, code)
    token = api_token(alice)
    messages = asyncio.run(collect(f"{live_platform.ws_url}/ws/scripts/runs/{run.pk}/", token))
    events = [m for m in messages if m["type"] == "event"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), live_platform.output()
    stdout = [line for e in events if e["data"]["stream"] == "stdout" for line in e["data"]["lines"]]
    stderr = [line for e in events if e["data"]["stream"] == "stderr" for line in e["data"]["lines"]]
    assert stdout == [f"line {i}" for i in range(20000)]
    assert stderr == [f"warn {i}" for i in range(0, 20000, 2000)]
    final = [m for m in messages if m["type"] == "status"][-1]["job"]
    assert final["status"] == "succeeded" and final["exit_code"] == 0


STUBBORN = (
    "import os, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        while True:\n"
    "            time.sleep(0.05)\n"
    "    while True:\n"
    "        time.sleep(0.05)\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    time.sleep(0.05)\n"
)


def test_cancel_kills_process_tree_and_worker_takes_next_run(live_platform, alice, auth_client):
    marker = f"marker-{uuid.uuid4().hex}"
    run = start(alice, STUBBORN, args=[marker])
    wait_until(lambda: LogChunk.objects.filter(run=run, text="ready").exists(), timeout=30,
               message="script ready\n" + live_platform.output())
    assert len(marker_processes(marker)) >= 4  # bwrap, sandbox init, script, its setsid child (+ grandchild)
    client = auth_client(alice)
    assert client.post(f"/api/runs/{run.pk}/cancel/").status_code == 202
    wait_until(lambda: not marker_processes(marker), timeout=10, message="sandbox processes gone")
    wait_until(lambda: ScriptRun.objects.get(pk=run.pk).is_finished, timeout=10)
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and run.end_reason == EndReason.CANCELLED
    assert run.cancelled_by == alice and run.exit_code == 137
    # The worker is free: the next run starts and finishes.
    nxt = start(alice, "print('next')\n", name="next.py")
    wait_until(lambda: ScriptRun.objects.get(pk=nxt.pk).is_finished, timeout=30, message=live_platform.output())
    nxt.refresh_from_db()
    assert nxt.status == JobStatus.SUCCEEDED


def test_worker_killed_mid_run_is_recovered_as_worker_lost(live_platform, alice):
    marker = f"marker-{uuid.uuid4().hex}"
    code = "import time\nprint('ready', flush=True)\nwhile True:\n    time.sleep(0.1)\n"
    run = start(alice, code, args=[marker])
    wait_until(lambda: LogChunk.objects.filter(run=run, text="ready").exists(), timeout=30,
               message="script ready\n" + live_platform.output())
    live_platform.stop_worker()
    # The sandbox dies with its worker (--die-with-parent): nothing is left running.
    wait_until(lambda: not marker_processes(marker), timeout=10, message="sandbox died with the worker")
    assert ScriptRun.objects.get(pk=run.pk).status == JobStatus.RUNNING
    # Its heartbeat died with the worker; its age is set rather than waited for.
    ScriptRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=120))
    counts = core_recovery.jobs_recover(stale_seconds=60)
    run.refresh_from_db()
    assert counts["worker_lost"] >= 1
    assert run.status == JobStatus.FAILED and run.end_reason == EndReason.WORKER_LOST
    assert run.end_description == "Worker lost"
    # Not re-run: no other run of this script exists, and the run stays failed once the worker is back.
    live_platform.start_worker()
    time.sleep(1)
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and ScriptRun.objects.filter(script=run.script).count() == 1


def test_delete_script_cancels_its_running_run_first(live_platform, alice, auth_client):
    marker = f"marker-{uuid.uuid4().hex}"
    run = start(alice, STUBBORN, args=[marker])
    wait_until(lambda: LogChunk.objects.filter(run=run, text="ready").exists(), timeout=30,
               message="script ready\n" + live_platform.output())
    response = auth_client(alice).delete(f"/api/scripts/{run.script_id}/")
    assert response.status_code == 204
    wait_until(lambda: not marker_processes(marker), timeout=10, message="sandbox processes gone")
    assert not ScriptRun.objects.filter(pk=run.pk).exists()
    assert not LogChunk.objects.filter(run_id=run.pk).exists()
    # The worker is free for the next run.
    nxt = start(alice, "print('after delete')\n", name="after.py")
    wait_until(lambda: ScriptRun.objects.get(pk=nxt.pk).is_finished, timeout=30, message=live_platform.output())
    assert ScriptRun.objects.get(pk=nxt.pk).status == JobStatus.SUCCEEDED


# --- networked runs through the real worker --------------------------------------------------------------

PROBE_HOST = (
    "import errno, json, socket, sys, time\n"
    "out = {}\n"
    "for host, port in json.loads(sys.argv[1]):\n"
    "    sock = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)\n"
    "    sock.settimeout(5)\n"
    "    try:\n"
    "        sock.connect((host, port)); out[f'{host} {port}'] = 'connected'\n"
    "    except OSError as exc:\n"
    "        out[f'{host} {port}'] = 'refused:' + errno.errorcode.get(exc.errno, str(exc.errno))\n"
    "    sock.close()\n"
    "print(json.dumps(out), flush=True)\n"
    "if len(sys.argv) > 2:\n"
    "    print('ready', flush=True)\n"
    "    while True:\n"
    "        time.sleep(0.1)\n"
)


def _network_tools():
    from scripts_runner import network

    ok, why = network.status()
    if not ok:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why)
        pytest.skip(why)


def _host_targets(port: int) -> list[tuple[str, int]]:
    from urllib.parse import urlparse

    from django.conf import settings

    from scripts_runner import network

    targets = [("127.0.0.1", 6379), ("127.0.0.1", 5432), ("127.0.0.1", port), ("::1", 6379)]
    redis = urlparse(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379")
    database = settings.DATABASES["default"]
    if database.get("PORT"):
        targets.append((database.get("HOST") or "127.0.0.1", int(database["PORT"])))
    targets.append((redis.hostname or "127.0.0.1", redis.port or 6379))
    targets += [(address, port) for address in network.host_addresses()
                if "/" not in address and not address.startswith(("127.", "::1", "fe80:"))]
    return sorted(set(targets))


def _netns_users(inode: int) -> list[int]:
    users = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}/ns/net").st_ino == inode:
                    users.append(int(name))
            except OSError:
                continue
    return users


def test_networked_run_reaches_no_platform_service(live_platform, alice):
    """Through the real API-side service and the real worker: Redis, PostgreSQL and the platform are refused."""
    _network_tools()
    port = int(live_platform.url.rsplit(":", 1)[1])
    targets = _host_targets(port)
    services.script_access_set(user=alice, network=True)
    script = services.script_create(owner=alice, name="probe.py", code=PROBE_HOST.encode())
    run = services.script_run_create(script=script, user=alice, args=[json.dumps(targets)], network=True)
    wait_until(lambda: ScriptRun.objects.get(pk=run.pk).is_finished, timeout=60, message=live_platform.output())
    run.refresh_from_db()
    lines = [line for chunk in LogChunk.objects.filter(run=run).order_by("seq") for line in chunk.lines()]
    assert run.status == JobStatus.SUCCEEDED and run.network, lines
    out = json.loads(lines[-1])
    assert set(out) == {f"{h} {p}" for h, p in targets}
    assert all(result.startswith("refused:") for result in out.values()), out


def test_worker_killed_mid_networked_run_leaves_no_namespace(live_platform, alice):
    """The crash of a real worker cluster (its process group killed). Killing the worker process alone, so
    that only the parent-death signals act, is scripts_runner/tests/test_network_isolation.py."""
    _network_tools()
    marker = f"marker-{uuid.uuid4().hex}"
    services.script_access_set(user=alice, network=True)
    script = services.script_create(owner=alice, name="hold.py", code=PROBE_HOST.encode())
    run = services.script_run_create(script=script, user=alice, args=["[]", marker], network=True)
    wait_until(lambda: LogChunk.objects.filter(run=run, text__endswith="ready").exists(), timeout=30,
               message="script ready\n" + live_platform.output())
    script_pid = max(marker_processes(marker))
    inode = os.stat(f"/proc/{script_pid}/ns/net").st_ino
    assert inode != os.stat("/proc/self/ns/net").st_ino
    holders = [pid for pid in _netns_users(inode) if pid not in marker_processes(marker)]
    assert holders  # the holder (and pasta's helpers) besides the sandbox
    live_platform.stop_worker()
    wait_until(lambda: not marker_processes(marker) and not _netns_users(inode), timeout=10,
               message="the run and its network namespace gone with the worker")
    live_platform.start_worker()
