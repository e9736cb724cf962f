"""A networked run reaches "the internet" and nothing on the host: proved with network namespaces the test makes.

Topology (every address lives in a namespace this test creates, so a leak in the
filter sends traffic nowhere else):

    [internet ns]  eth0 198.51.100.1/24   HTTP :80 ("internet"), DNS :53 (example.test -> 198.51.100.1)
         |
    [worker-host ns]  i0 198.51.100.2/24 (default route via .1)   p0 10.77.0.2/24 (+ 169.254.169.254 via p0)
         |            stand-ins on 127.0.0.1:5432/6379/8000, [::1]:8000, 198.51.100.2:8000, 10.77.0.2:8000
    [private ns]   eth0 10.77.0.1/24 + 169.254.169.254/16   HTTP :80 ("private"), UDP :9999

The run is started by `netns_launch.py` (sandbox.prepare + sandbox.start, the
worker's code path) inside the worker-host namespace with `ip netns exec`, which
also bind-mounts /etc/netns/<name>/resolv.conf: pasta's DNS forwarder uses the
test's DNS server. Each listener logs what reached it; a refused destination
must have received nothing — and each one is first shown to be reachable from
the worker host itself, so "refused" is the filter's doing.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.models import JobStatus
from tests.support import wait_until
from scripts_runner import network, sandbox, services
from scripts_runner.models import LogChunk, ScriptRun

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable

INTERNET = "198.51.100.1"
WORKER_INET = "198.51.100.2"
PRIVATE = "10.77.0.1"
WORKER_PRIVATE = "10.77.0.2"
METADATA = "169.254.169.254"

# Run inside the sandbox: every probe's outcome as one JSON object.
PROBE = r'''
import errno, json, socket, subprocess, sys, urllib.request

def http(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return "body:" + response.read().decode()
    except Exception as exc:
        reason = getattr(exc, "reason", exc)
        return "error:" + (errno.errorcode.get(getattr(reason, "errno", None) or 0, type(reason).__name__))

def tcp(host, port):
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.settimeout(5)
    try:
        sock.connect((host, port))
        return "connected"
    except OSError as exc:
        return "refused:" + (errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno else type(exc).__name__)
    finally:
        sock.close()

def udp(host, port):
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.sendto(b"probe", (host, port))
        return "sent"
    except OSError as exc:
        return "refused:" + errno.errorcode.get(exc.errno, str(exc.errno))
    finally:
        sock.close()

def resolve(name):
    try:
        return socket.gethostbyname(name)
    except OSError as exc:
        return "error:" + type(exc).__name__

out = {"tcp": {}, "udp": {}}
out["resolve"] = resolve("example.test")
out["http_by_name"] = http("http://example.test/")
out["http_by_address"] = http("http://198.51.100.1/")
targets = json.loads(sys.argv[1])
for host, port in targets["tcp"]:
    out["tcp"][f"{host} {port}"] = tcp(host, port)
for host, port in targets["udp"]:
    out["udp"][f"{host} {port}"] = udp(host, port)
try:
    done = subprocess.run(["nft", "flush", "ruleset"], capture_output=True, timeout=10)
    out["nft_flush"] = done.returncode
except OSError as exc:
    out["nft_flush"] = type(exc).__name__
out["after_nft_flush"] = tcp("10.77.0.1", 80)
print(json.dumps(out))
'''

# Every destination a networked run must not reach: (host, port) -> who would answer if it leaked.
REFUSED_TCP = [
    (PRIVATE, 80), (METADATA, 80), ("::ffff:10.77.0.1", 80),  # private host, cloud metadata
    ("127.0.0.1", 5432), ("127.0.0.1", 6379), ("127.0.0.1", 8000), ("::1", 8000),  # the worker host's loopback
    (WORKER_INET, 8000), (WORKER_PRIVATE, 8000),  # the worker host's end of each veth
    (INTERNET, 8000),  # the gateway's address: must not be mapped to the worker host's loopback (--no-map-gw)
    ("0.0.0.0", 8000), ("::", 8000),
    (network.DNS_FORWARDER, 53),  # the forwarder is for UDP DNS only
]
REFUSED_UDP = [(PRIVATE, 9999), (METADATA, 9999)]


def _need_tools():
    missing = [name for name, path in network.tools().items() if path is None]
    if missing:
        reason = f"network namespaces / pasta / nftables are not available here: {', '.join(missing)} missing"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def sh(*args, ns=None, check=True, **kwargs):
    argv = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=60, **kwargs)


class Topology:
    """The namespaces, veths and listeners of one test; `close()` removes them all (also after a failure)."""

    def __init__(self, tmp: Path):
        tag = f"{os.getpid() % 100000}{threading.get_ident() % 97}"
        self.inet, self.worker, self.private = f"sr-inet-{tag}", f"sr-wh-{tag}", f"sr-priv-{tag}"
        self.tmp = tmp
        self.servers: list[subprocess.Popen] = []
        self.veths = [f"sri{tag}", f"srp{tag}"]
        self.logs = {name: tmp / f"{name}.log" for name in ("internet", "private", "worker")}

    def build(self) -> None:
        for ns in (self.inet, self.worker, self.private):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        inet_veth, priv_veth = self.veths
        sh("ip", "link", "add", inet_veth, "type", "veth", "peer", "name", inet_veth + "b")
        sh("ip", "link", "add", priv_veth, "type", "veth", "peer", "name", priv_veth + "b")
        sh("ip", "link", "set", inet_veth, "netns", self.worker, "name", "i0")
        sh("ip", "link", "set", inet_veth + "b", "netns", self.inet, "name", "eth0")
        sh("ip", "link", "set", priv_veth, "netns", self.worker, "name", "p0")
        sh("ip", "link", "set", priv_veth + "b", "netns", self.private, "name", "eth0")
        for ns, commands in (
            (self.inet, [["addr", "add", f"{INTERNET}/24", "dev", "eth0"], ["link", "set", "eth0", "up"]]),
            (self.worker, [["addr", "add", f"{WORKER_INET}/24", "dev", "i0"], ["link", "set", "i0", "up"],
                           ["addr", "add", f"{WORKER_PRIVATE}/24", "dev", "p0"], ["link", "set", "p0", "up"],
                           ["route", "add", "default", "via", INTERNET],
                           ["route", "add", f"{METADATA}/32", "dev", "p0"]]),
            (self.private, [["addr", "add", f"{PRIVATE}/24", "dev", "eth0"],
                            ["addr", "add", f"{METADATA}/16", "dev", "eth0"], ["link", "set", "eth0", "up"]]),
        ):
            for command in commands:
                sh("ip", *command, ns=ns)
        resolv = Path("/etc/netns") / self.worker
        resolv.mkdir(parents=True, exist_ok=True)
        (resolv / "resolv.conf").write_text(f"nameserver {INTERNET}\n")
        self.serve(self.inet, "internet", [
            {"kind": "http", "addr": INTERNET, "port": 80, "body": "internet"},
            {"kind": "dns", "addr": INTERNET, "port": 53, "names": {"example.test": INTERNET}},
        ])
        self.serve(self.private, "private", [
            {"kind": "http", "addr": "0.0.0.0", "port": 80, "body": "private"},
            {"kind": "udp", "addr": "0.0.0.0", "port": 9999},
        ])
        self.serve(self.worker, "worker", [
            {"kind": "tcp", "addr": "127.0.0.1", "port": 5432}, {"kind": "tcp", "addr": "127.0.0.1", "port": 6379},
            {"kind": "http", "addr": "127.0.0.1", "port": 8000, "body": "platform"},
            {"kind": "http", "addr": "127.0.0.1", "port": 80, "body": "worker loopback"},
            {"kind": "tcp", "addr": "::1", "port": 8000},
            {"kind": "tcp", "addr": WORKER_INET, "port": 8000}, {"kind": "tcp", "addr": WORKER_PRIVATE, "port": 8000},
            {"kind": "udp", "addr": "127.0.0.1", "port": 9999},
        ])

    def serve(self, ns: str, name: str, specs: list[dict]) -> None:
        self.logs[name].write_text("")
        proc = subprocess.Popen(["ip", "netns", "exec", ns, PYTHON, str(HERE / "netns_servers.py"),
                                 str(self.logs[name]), json.dumps(specs)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.servers.append(proc)
        line = proc.stdout.readline()
        assert line.strip() == b"ready", proc.stderr.read().decode()

    def records(self, name: str) -> list[dict]:
        return [json.loads(line) for line in self.logs[name].read_text().splitlines() if line]

    def clear_logs(self) -> None:
        for log in self.logs.values():
            log.write_text("")

    def launch(self, code: str, *, network_on: bool, args: list[str]) -> dict:
        script = self.tmp / "probe.py"
        script.write_text(code)
        run_dir = self.tmp / f"run-{len(list(self.tmp.glob('run-*')))}"
        env = {**os.environ, "SCRIPTS_RUNNER_RUN_ROOT": str(self.tmp)}
        done = sh(PYTHON, str(HERE / "netns_launch.py"), str(run_dir), "1" if network_on else "0", str(script),
                  *args, ns=self.worker, check=False, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.splitlines()[-1])
        assert result["returncode"] == 0, result["stderr"][-3000:]
        return json.loads(result["stdout"].splitlines()[-1])

    def close(self) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait()
        for ns in (self.inet, self.worker, self.private):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        for veth in self.veths:  # only left in the host namespace if the test failed before moving them
            subprocess.run(["ip", "link", "delete", veth], capture_output=True)
        shutil.rmtree(Path("/etc/netns") / self.worker, ignore_errors=True)


@pytest.fixture
def testnet(tmp_path, sandbox_available):
    _need_tools()
    net = Topology(tmp_path)
    try:
        net.build()
        yield net
    finally:
        net.close()
    assert not any(ns in sh("ip", "netns", "list").stdout for ns in (net.inet, net.worker, net.private))


CONTROL = r'''
import json, socket, sys
out = {}
for host, port in json.loads(sys.argv[1]):
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.settimeout(5)
    try:
        sock.connect((host, port)); out[f"{host} {port}"] = "connected"
    except OSError as exc:
        out[f"{host} {port}"] = "refused"
    sock.close()
print(json.dumps(out))
'''


def test_networked_run_reaches_the_internet_host_and_nothing_private(testnet):
    # The targets are real: the worker host itself reaches every one of them.
    reachable = [(PRIVATE, 80), (METADATA, 80), ("127.0.0.1", 5432), ("127.0.0.1", 6379), ("127.0.0.1", 8000),
                 ("::1", 8000), (WORKER_INET, 8000), (WORKER_PRIVATE, 8000), (INTERNET, 80)]
    control = json.loads(sh(PYTHON, "-c", CONTROL, json.dumps(reachable), ns=testnet.worker).stdout)
    assert set(control.values()) == {"connected"}, control
    testnet.clear_logs()

    out = testnet.launch(PROBE, network_on=True,
                         args=[json.dumps({"tcp": REFUSED_TCP, "udp": REFUSED_UDP})])

    assert out["resolve"] == INTERNET
    assert out["http_by_name"] == "body:internet"
    assert out["http_by_address"] == "body:internet"
    assert all(not result.startswith("connected") for result in out["tcp"].values()), out["tcp"]
    # The filter answers "administratively prohibited" (EHOSTUNREACH) for what leaves towards a refused range;
    # the host's loopback and the worker's addresses that pasta copied lead back into the run's own namespace,
    # where nothing listens (ECONNREFUSED).
    for target in (f"{PRIVATE} 80", f"{METADATA} 80", "::ffff:10.77.0.1 80", f"{WORKER_PRIVATE} 8000",
                   f"{network.DNS_FORWARDER} 53"):
        assert out["tcp"][target] == "refused:EHOSTUNREACH", (target, out["tcp"])
    for target in ("127.0.0.1 5432", "127.0.0.1 6379", "127.0.0.1 8000", "::1 8000", f"{WORKER_INET} 8000"):
        assert out["tcp"][target] == "refused:ECONNREFUSED", (target, out["tcp"])
    # The gateway's address is the internet host itself (nothing listens on its :8000; this pasta lets the
    # connect time out rather than relay the reset), not the worker's loopback: the stand-in on the worker's
    # 127.0.0.1:8000 saw nothing (below), and "by address" above got the internet host's body.
    assert set(out["udp"].values()) == {"refused:EPERM"}, out["udp"]
    # The script cannot change the rules.
    assert out["nft_flush"] != 0
    assert out["after_nft_flush"] == "refused:EHOSTUNREACH"

    # Nothing but the internet host saw the run, and it saw the worker host's address (pasta's NAT).
    assert testnet.records("private") == []
    assert testnet.records("worker") == []
    internet = testnet.records("internet")
    assert {(r["kind"], r["port"]) for r in internet} >= {("http", 80), ("dns", 53)}
    assert {r["peer"] for r in internet} == {WORKER_INET}


def test_run_without_network_reaches_nothing(testnet):
    out = testnet.launch(PROBE, network_on=False,
                         args=[json.dumps({"tcp": [*REFUSED_TCP, (INTERNET, 80)], "udp": REFUSED_UDP})])
    assert out["resolve"].startswith("error:")
    assert out["http_by_name"].startswith("error:") and out["http_by_address"].startswith("error:")
    assert all(not result.startswith("connected") for result in out["tcp"].values()), out["tcp"]
    for name in ("internet", "private", "worker"):
        assert testnet.records(name) == [], name


# --- on the real host, through the real service and task ------------------------------------------------


@pytest.fixture
def host_listener():
    """A stand-in for the platform on every address of this host."""
    server = socket.socket(socket.AF_INET6)
    server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    server.bind(("::", 0))
    server.listen(16)
    accepted = []

    def accept():
        while True:
            try:
                conn, peer = server.accept()
            except OSError:
                return
            accepted.append(peer)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    server.close()


HOST_PROBE = r'''
import errno, json, socket, sys
out = {}
for host, port in json.loads(sys.argv[1]):
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.settimeout(5)
    try:
        sock.connect((host, port)); out[f"{host} {port}"] = "connected"
    except OSError as exc:
        out[f"{host} {port}"] = "refused:" + errno.errorcode.get(exc.errno, str(exc.errno))
    sock.close()
print(json.dumps(out))
'''


@pytest.mark.django_db(transaction=True)
def test_networked_run_on_the_host_reaches_no_host_service(runner, make_script, host_listener, sandbox_available):
    _need_tools()
    from scripts_runner import tasks

    port, accepted = host_listener
    # Every address of this host except loopback (below) and link-local ones (they need a scope to connect).
    host_addresses = [a for a in network.host_addresses()
                      if "/" not in a and not a.startswith(("127.", "::1", "fe80:"))]
    targets = [("127.0.0.1", 6379), ("127.0.0.1", 5432), ("127.0.0.1", port), ("::1", port),
               *((address, port) for address in host_addresses)]
    # Control: from this process (the host) the stand-in answers on every address.
    for host, target_port in targets[2:]:
        socket.create_connection((host, target_port), timeout=5).close()
    wait_until(lambda: len(accepted) == len(targets) - 2, timeout=10, message="control connections accepted")
    accepted.clear()

    services.script_access_set(user=runner, network=True)
    script = make_script(runner, HOST_PROBE)
    run = services.script_run_create(script=script, user=runner, args=[json.dumps(targets)], network=True)
    tasks.script_run_execute(run.pk)
    run.refresh_from_db()
    lines = [line for chunk in LogChunk.objects.filter(run=run).order_by("seq") for line in chunk.lines()]
    assert run.status == JobStatus.SUCCEEDED, lines
    assert run.network and run.sandboxed
    out = json.loads(lines[-1])
    assert set(out) == {f"{h} {p}" for h, p in targets}
    assert all(result.startswith("refused:") for result in out.values()), out
    assert accepted == []


# --- teardown: after a cancel, and when the worker dies ---------------------------------------------------

HOLD = "import time\nprint('ready', flush=True)\nwhile True:\n    time.sleep(0.05)\n"


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _netns_in_use(inode: int) -> list[int]:
    users = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}/ns/net").st_ino == inode:
                    users.append(int(name))
            except OSError:
                continue
    return users


def test_worker_death_takes_the_run_network_with_it(tmp_path, sandbox_available):
    _need_tools()
    script = tmp_path / "hold.py"
    script.write_text(HOLD)
    env = {**os.environ, "SCRIPTS_RUNNER_RUN_ROOT": str(tmp_path)}
    worker = subprocess.Popen([PYTHON, str(HERE / "netns_launch.py"), "--hold", str(tmp_path / "run"), "1",
                               str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = worker.stdout.readline()
        assert line, worker.stderr.read().decode()
        held = json.loads(line)
        assert held["first"] == "ready\n"
        # bwrap, its init, the script; the holder, unshare, the PID namespace's init, pasta.
        assert len(held["pids"]) >= 6, held
        assert not any(_gone(pid) for pid in held["pids"])
        assert _netns_in_use(held["netns"])
    finally:
        worker.kill()
        worker.wait()
    wait_until(lambda: all(_gone(pid) for pid in held["pids"]), timeout=10,
               message="every process of the run and its network gone")
    assert _netns_in_use(held["netns"]) == []


@pytest.mark.django_db(transaction=True)
def test_cancel_of_networked_run_removes_its_network(runner, make_script, sandbox_available):
    _need_tools()
    from scripts_runner import runner as runner_module

    services.script_access_set(user=runner, network=True)
    run = services.script_run_create(script=make_script(runner, HOLD), user=runner, network=True)
    before = set(sandbox.descendants(os.getpid()))
    seen = {}

    def cancel_when_ready():
        from django.db import connection

        try:
            wait_until(lambda: LogChunk.objects.filter(run=run, text__contains="ready").exists(), timeout=20)
            seen["pids"] = [pid for pid in sandbox.descendants(os.getpid()) if pid not in before]
            seen["netns"] = {os.stat(f"/proc/{pid}/ns/net").st_ino for pid in seen["pids"]
                             if os.path.exists(f"/proc/{pid}/ns/net")} - {os.stat("/proc/self/ns/net").st_ino}
            services.script_run_cancel(run=ScriptRun.objects.get(pk=run.pk), by=runner)
        finally:
            connection.close()

    thread = threading.Thread(target=cancel_when_ready)
    thread.start()
    runner_module.script_run_execute(pk=run.pk)
    thread.join()
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED
    assert len(seen["netns"]) == 1, seen  # the run's own namespace, besides the host's
    assert len(seen["pids"]) >= 6, seen
    # The sandbox's inner processes are killed by the kernel as its PID namespace ends: wait for that.
    wait_until(lambda: all(_gone(pid) for pid in seen["pids"]), timeout=10,
               message="every process of the run and its network gone")
    assert _netns_in_use(seen["netns"].pop()) == []
