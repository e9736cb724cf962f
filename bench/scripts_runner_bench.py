"""Script runner benchmarks: output throughput, live latency, cancel latency, sandbox start.

Run from the project root:  .venv/bin/python bench/scripts_runner_bench.py [--quick] [--only=start,throughput,latency,cancel]

Sets up its own SQLite database under var/bench_scripts_runner/ and starts its
own ASGI server and django-q2 worker (embedded mode, and Redis mode when
REDIS_URL or redis://127.0.0.1:6379 answers). Every figure is printed with its
ratio against the anchor measured in the same run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE))
VAR = BASE / "var" / "bench_scripts_runner"
QUICK = "--quick" in sys.argv
ONLY = next((a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--only=")), None)


def wanted(section: str) -> bool:
    return ONLY is None or section in ONLY
LINES = 50_000 if QUICK else 500_000

shutil.rmtree(VAR, ignore_errors=True)
VAR.mkdir(parents=True)
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)
os.environ["PLATFORM_VAR_DIR"] = str(VAR)
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
os.environ["LOG_LEVEL"] = "WARNING"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from accounts.services import token_create  # noqa: E402

from accounts.models import User  # noqa: E402
from scripts_runner import runner, sandbox, services  # noqa: E402
from scripts_runner.models import LogChunk, ScriptRun  # noqa: E402


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_url() -> str | None:
    """A local Redis, when one answers. The bench only ever deletes the keys it created (see Platform)."""
    url = "redis://127.0.0.1:6379/14"
    try:
        import redis

        redis.Redis.from_url(url).ping()
        return url
    except Exception:
        return None


class Platform:
    """uvicorn + qcluster on the bench database (optionally with Redis)."""

    def __init__(self, redis: str | None):
        self.port = free_port()
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", DJANGO_DEBUG="true")
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.redis = redis
        # Every Redis key the platform writes (queue, channel layer, cache) carries the cluster name:
        # a name of the bench's own lets it delete exactly its keys afterwards, and nothing else.
        self.cluster = f"srbench{uuid.uuid4().hex[:10]}"
        self.env["Q_CLUSTER_NAME"] = self.cluster
        if redis:
            self.env["REDIS_URL"] = redis
            self.env["DJANGO_SECRET_KEY"] = "scripts-runner-bench-" + uuid.uuid4().hex * 2
        self.logs = tempfile.mkdtemp(prefix="sr-bench-")
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port",
                 str(self.port), "--ws", "websockets", "--lifespan", "off", "--log-level", "warning"],
                cwd=BASE, env=self.env, stdout=open(f"{self.logs}/web.log", "wb"), stderr=subprocess.STDOUT,
                start_new_session=True),
            subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"], cwd=BASE, env=self.env,
                stdout=open(f"{self.logs}/worker.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True),
        ]
        deadline = time.monotonic() + 60
        import urllib.request

        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/accounts/login/", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(1.5)  # let the worker cluster come up

    def stop(self):
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if self.redis:
            import redis

            client = redis.Redis.from_url(self.redis)
            keys = list(client.scan_iter(match=f"*{self.cluster}*", count=1000))
            if keys:
                client.delete(*keys)


def make_user() -> tuple[User, str]:
    user = User.objects.create_user("bench", "bench@example.com", "correct-Horse-9")
    services.script_access_set(user=user, run=True)
    user = User.objects.get(pk=user.pk)
    return user, token_create(user=user, name="bench")[1]


def new_run(platform: "Platform", token: str, user, code: str, *, args=None) -> ScriptRun:
    """Start a run through the server's API, so it is queued on that server's broker."""
    import urllib.request

    script = services.script_create(owner=user, name=f"b{uuid.uuid4().hex[:8]}.py", code=code.encode())
    request = urllib.request.Request(
        f"http://127.0.0.1:{platform.port}/api/scripts/{script.pk}/runs/", method="POST",
        data=json.dumps({"args": args or []}).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    body = json.loads(urllib.request.urlopen(request, timeout=30).read())
    return ScriptRun.objects.get(pk=body["id"])


# --- 1. throughput ------------------------------------------------------------------

THROUGHPUT = f"for i in range({LINES}):\n    print(f'line {{i}}')\n"


def _anchor(path: Path, out_path: Path, *flags: str) -> float:
    best = float("inf")
    for _ in range(3):
        with open(out_path, "wb") as out:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-I", *flags, str(path)], stdout=out, check=True)
            best = min(best, time.perf_counter() - t0)
    return best


def _stored(run) -> tuple[int, str, int]:
    digest = hashlib.sha256()
    count = 0
    for chunk in LogChunk.objects.filter(run=run).order_by("seq").iterator(chunk_size=500):
        digest.update((chunk.text + "\n").encode())
        count += chunk.line_count
    return count, digest.hexdigest(), LogChunk.objects.filter(run=run).count()


def bench_throughput(user, token):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.py"
        path.write_text(THROUGHPUT)
        buffered = _anchor(path, Path(tmp) / "out.txt")
        anchor = _anchor(path, Path(tmp) / "out.txt", "-u")
        expected = hashlib.sha256((Path(tmp) / "out.txt").read_bytes()).hexdigest()
    # The worker's code path, run inline in this process (no queue wait in the figure).
    script = services.script_create(owner=user, name="throughput.py", code=THROUGHPUT.encode())
    run = services.script_run_create(script=script, user=user)
    ScriptRun.objects.filter(pk=run.pk).update(task_id="bench-inline")
    t0 = time.perf_counter()
    runner.script_run_execute(pk=run.pk)
    took = time.perf_counter() - t0
    run.refresh_from_db()
    count, digest, chunks = _stored(run)
    ok = count == LINES and digest == expected
    print(f"throughput: {LINES:,} lines; anchors (best of 3): python -u > file {anchor:.3f} s, "
          f"python > file (buffered) {buffered:.3f} s")
    print(f"throughput: platform run inline {took:.3f} s, ratio {took / anchor:.2f}x to python -u (target <= 2x), "
          f"{took / buffered:.2f}x to buffered python; stored {count:,} lines in {chunks} chunks, "
          f"checksum {'OK' if ok else 'MISMATCH'}; status {run.status}")
    # The same run through the API, the queue and a real worker: POST to finished, start-up of the
    # worker excluded (it is up before the clock starts), queue wait and sandbox start included.
    platform = Platform(None)
    try:
        t0 = time.perf_counter()
        run = new_run(platform, token, user, THROUGHPUT)
        while not ScriptRun.objects.get(pk=run.pk).is_finished:
            time.sleep(0.01)
        queued = time.perf_counter() - t0
    finally:
        platform.stop()
    run.refresh_from_db()
    count, digest, chunks = _stored(run)
    ok = count == LINES and digest == expected
    print(f"throughput: platform run through the queue and a worker {queued:.3f} s (POST to finished), ratio "
          f"{queued / anchor:.2f}x to python -u, {queued / buffered:.2f}x to buffered python; "
          f"checksum {'OK' if ok else 'MISMATCH'}; status {run.status}")


# --- 2. live latency ---------------------------------------------------------------------

LATENCY = (
    "import time\n"
    "time.sleep(1.0)\n"
    "for i in range(200):\n"
    "    print(f'{i} {time.time():.6f}', flush=True)\n"
    "    time.sleep(0.02)\n"
)


async def _ws_latencies(url: str, token: str) -> list[float]:
    import websockets

    latencies = []
    headers = {"Authorization": f"Token {token}"}  # never in the URL
    async with websockets.connect(url, open_timeout=10, max_size=None, additional_headers=headers) as ws:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
            now = time.time()
            if message["type"] == "event":
                for line in message["data"]["lines"]:
                    parts = line.split()
                    if len(parts) == 2:
                        latencies.append(now - float(parts[1]))
            elif message["type"] == "end":
                return latencies


def bench_latency(user, token, mode: str, redis: str | None):
    platform = Platform(redis)
    try:
        run = new_run(platform, token, user, LATENCY)
        url = f"ws://127.0.0.1:{platform.port}/ws/scripts/runs/{run.pk}/"
        lat = asyncio.run(_ws_latencies(url, token))
    finally:
        platform.stop()
    target = 0.3 if mode == "redis" else 1.2
    p50, p95 = statistics.median(lat) * 1000, pct(lat, 95) * 1000
    print(f"latency ({mode}): {len(lat)} lines, p50 {p50:.0f} ms, p95 {p95:.0f} ms; "
          f"p95/target {p95 / (target * 1000):.2f} (target p95 < {target * 1000:.0f} ms)")
    return platform


# --- 3. cancel latency and sandbox start ---------------------------------------------------

STUBBORN = (
    "import os, signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    while True:\n"
    "        time.sleep(0.05)\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    time.sleep(0.05)\n"
)


def marker_alive(marker: bytes) -> bool:
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                if marker not in fh.read():
                    continue
            with open(f"/proc/{name}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                    return True
        except OSError:
            continue
    return False


def bench_cancel(user, token, rounds: int, mode: str = "embedded", redis: str | None = None):
    import urllib.request

    platform = Platform(redis)
    latencies, answered = [], []
    try:
        for _ in range(rounds):
            marker = f"m{uuid.uuid4().hex}"
            run = new_run(platform, token, user, STUBBORN, args=[marker])
            deadline = time.monotonic() + 30
            while not LogChunk.objects.filter(run=run, text="ready").exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("run did not start:\n" + Path(platform.logs, "worker.log").read_text()[-3000:])
                time.sleep(0.01)
            request = urllib.request.Request(
                f"http://127.0.0.1:{platform.port}/api/runs/{run.pk}/cancel/", method="POST",
                headers={"Authorization": f"Token {token}"})
            t0 = time.perf_counter()
            urllib.request.urlopen(request, timeout=10).read()
            answered.append(time.perf_counter() - t0)
            while marker_alive(marker.encode()):
                time.sleep(0.002)
            latencies.append(time.perf_counter() - t0)
            while not ScriptRun.objects.get(pk=run.pk).is_finished:
                time.sleep(0.005)
    finally:
        platform.stop()
    p50, p95 = statistics.median(latencies), pct(latencies, 95)
    print(f"cancel ({mode}): {rounds} runs (script ignores SIGTERM, child called setsid): request -> process tree gone "
          f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; p95/target {p95:.2f} (target < 1 s); "
          f"of which the HTTP cancel request p50 {statistics.median(answered) * 1000:.0f} ms, "
          f"p95 {pct(answered, 95) * 1000:.0f} ms")


def bench_sandbox_start(rounds: int = 20):
    """Start-up of a run of `pass`: plain python, the sandbox, and the sandbox with its own network."""
    from scripts_runner import network

    from scripts_runner import conf as runner_conf

    plain, boxed, networked = [], [], []
    net_ok, net_error = network.status()
    Path(runner_conf.RUN_ROOT).mkdir(parents=True, exist_ok=True)
    bench_id = uuid.uuid4().hex[:8]
    def one_run(index: int, *, network: bool) -> float:
        """What the worker does for a run of `pass`: prepare, start, wait, release (and the network).

        The run's folder is made as the worker makes it, right under the run root with the default
        mode: the sandbox's user reads the network's resolv.conf through it (a private temporary
        folder around it made every networked start fail with "Permission denied")."""
        run_dir = Path(runner_conf.RUN_ROOT) / f"bench-{bench_id}-{'net' if network else 'box'}{index}"
        run_dir.mkdir()
        t0 = time.perf_counter()
        launch = sandbox.prepare(run_dir=run_dir, script_name="n.py",
                                 code=b"pass\n", args=[], env={}, network=network, sandboxed=True)
        try:
            proc = sandbox.start(launch)
            output, errors = proc.communicate()
        finally:
            sandbox.release(launch)
            sandbox.network_stop(launch)
            elapsed = time.perf_counter() - t0
            shutil.rmtree(run_dir, ignore_errors=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{'networked ' if network else ''}run failed: exit {proc.returncode}: "
                               f"{(output + errors)!r:.2000}")
        return elapsed

    for index in range(rounds):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)
        plain.append(time.perf_counter() - t0)
        boxed.append(one_run(index, network=False))
        if net_ok:
            # Namespace + filter + pasta, the run, and the teardown: the whole cost of a networked run.
            try:
                networked.append(one_run(index, network=True))
            except RuntimeError as exc:
                net_ok, net_error = False, str(exc)
    p_plain, p_boxed = statistics.median(plain), statistics.median(boxed)
    print(f"sandbox start: python -I (anchor) p50 {p_plain * 1000:.0f} ms, sandboxed run p50 {p_boxed * 1000:.0f} ms; "
          f"overhead {(p_boxed - p_plain) * 1000:.0f} ms per run, ratio {p_boxed / p_plain:.2f}x")
    print(f"sandbox start without network ({rounds} runs): p50 {p_boxed * 1000:.0f} ms, "
          f"p95 {pct(boxed, 95) * 1000:.0f} ms")
    if networked:
        p_net = statistics.median(networked)
        print(f"sandbox start with network (own namespace, nftables filter, pasta; {rounds} runs, teardown "
              f"included): p50 {p_net * 1000:.0f} ms, p95 {pct(networked, 95) * 1000:.0f} ms; "
              f"+{(p_net - p_boxed) * 1000:.0f} ms per run over no network, ratio {p_net / p_boxed:.2f}x")
    else:
        print(f"sandbox start with network: not measured ({net_error})")


def main():
    # A terminated bench still stops the server and worker it started (finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    call_command("migrate", verbosity=0)
    user, token = make_user()
    ok, error = sandbox.probe()
    print(f"sandbox: {'bubblewrap ' + str(sandbox.bwrap_binary()) if ok else 'UNAVAILABLE: ' + error}; "
          f"pids cgroup: {sandbox.host_cgroup_root() or 'none'}; memory cgroup: "
          f"{(sandbox.memory_cgroup_root() or ('none',))[0]} ({sandbox.memory_cgroup_status['reason']})")
    if wanted("start"):
        bench_sandbox_start()
    if wanted("throughput"):
        bench_throughput(user, token)
    if wanted("latency"):
        bench_latency(user, token, "embedded", None)
        redis = redis_url()
        if redis:
            bench_latency(user, token, "redis", redis)
        else:
            print("latency (redis): skipped, no Redis on 127.0.0.1:6379")
    if wanted("cancel"):
        bench_cancel(user, token, rounds=5 if QUICK else 20)
        redis = redis_url()
        if redis:
            bench_cancel(user, token, rounds=5 if QUICK else 20, mode="redis", redis=redis)


if __name__ == "__main__":
    main()
