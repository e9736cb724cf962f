"""A networked run's own network namespace: an nftables filter and pasta (user-mode NAT).

A run with network never shares the worker's network namespace. For each such
run the worker (root) sets up, before the script starts:

1. a **holder** process (`sleep`) in a new user namespace and a new network
   namespace, both created as the NAT user (`SCRIPTS_RUNNER_NETWORK_UID`), so
   that pasta can join them without privileges on the host (this pasta cannot
   join a root-owned namespace once it has dropped to its user); the worker
   keeps a descriptor of the namespace and enters it only through that;
2. the **filter**: an nftables table loaded into that namespace by the worker
   (`nsenter --net … nft -f -`) that refuses the host's loopback and addresses,
   `0.0.0.0/8`, `::`, `::ffff:0:0/96`, the private ranges and link-local, and
   lets through only UDP port 53 to pasta's DNS forwarder among them;
3. **pasta**, attached to the namespace (`--netns`), with every port forward
   off (`-t/-u/-T/-U none`: with the default `-T auto` the namespace's
   127.0.0.1:5432 would lead to the host's) and the gateway not mapped to the
   host (`--no-map-gw`); DNS queries to `DNS_FORWARDER` go to the host's resolver;
4. then bubblewrap is started inside that namespace (`nsenter --net`, bwrap
   `--share-net` keeps it instead of creating an empty one).

The script runs in bubblewrap's own user namespace, a sibling of the one that
owns the network namespace: it has no capability over the namespace, so it
cannot change the rules (nor can pasta's port forwards be turned on: there is
no API socket).

Lifetime. The holder has `PR_SET_PDEATHSIG` (setpriv) and dies with the worker.
pasta drops to the NAT user, which clears a parent-death signal, so it runs
under `unshare --pid --fork --kill-child`: a `sh` is the init of a new PID
namespace and dies with `unshare`, which dies with the worker; when a PID
namespace's init dies, the kernel kills every process in it. After a run (and
on cancel) the worker kills both itself. With nothing left in it, the kernel
frees the namespace: no bind mount is ever made, so nothing can be left behind.

The namespace is entered (nft, bwrap) through the worker's own descriptor of
it (`/proc/<worker>/fd/<n>`), checked to be another namespace than the
worker's: a reused PID can never lead a run into the host's namespace.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from scripts_runner import conf

logger = logging.getLogger(__name__)

#: Where the run's DNS queries go (UDP 53, translated by pasta to the host's first resolver).
#: In link-local space, refused for everything else.
DNS_FORWARDER = "169.254.0.53"

#: Refused from inside a networked run, besides the host's own addresses.
REFUSED_V4 = ("127.0.0.0/8", "0.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
              "169.254.0.0/16")
REFUSED_V6 = ("::1/128", "::/128", "::ffff:0:0/96", "fc00::/7", "fe80::/10")

TABLE = "scripts_runner"
#: pasta's PID file and log of one run (pasta, as the NAT user, must be able to write there).
WORKDIR_PREFIX = "sr-net-"
START_TIMEOUT = 10.0

INSTALL_HINT = "install Debian's passt (pasta) and nftables on the worker host: apt-get install passt nftables"


class NetworkUnavailable(Exception):
    """A networked run cannot be given its own filtered network here (never falls back to the host's)."""


def _which(name: str) -> str | None:
    return shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")


def tools() -> dict[str, str | None]:
    """The programs a networked run needs (None where missing)."""
    configured = conf.PASTA
    pasta = (configured if os.access(configured, os.X_OK) else None) if configured else _which("pasta")
    return {"pasta": pasta, **{name: _which(name) for name in ("nft", "ip", "nsenter", "unshare", "setpriv")}}


def status() -> tuple[bool, str]:
    """(networked runs can start here, why not)."""
    found = tools()
    missing = [name for name, path in found.items() if path is None]
    if not missing:
        return True, ""
    if {"pasta", "nft"} & set(missing):
        return False, f"Networked runs are not available on this host: {', '.join(missing)} missing; {INSTALL_HINT}."
    return False, (f"Networked runs are not available on this host: {', '.join(missing)} missing "
                   f"(util-linux / iproute2).")


# --- the filter -------------------------------------------------------------------


def host_addresses() -> list[str]:
    """Every address of the worker's network namespace (all interfaces, and local routes such as AnyIP)."""
    ip = tools()["ip"] or "ip"
    found: set[str] = set()
    done = subprocess.run([ip, "-j", "addr", "show"], capture_output=True, text=True, timeout=10, check=True)
    for link in json.loads(done.stdout or "[]"):
        for info in link.get("addr_info", []):
            if info.get("local"):
                found.add(info["local"])
    for family in ("-4", "-6"):
        done = subprocess.run([ip, family, "-j", "route", "show", "table", "local", "type", "local"],
                              capture_output=True, text=True, timeout=10)
        if done.returncode == 0:
            for route in json.loads(done.stdout or "[]"):
                if route.get("dst") and route["dst"] != "default":
                    found.add(route["dst"])
    return sorted(found)


def _collapsed(ranges) -> dict[int, list[str]]:
    by_version: dict[int, list] = {4: [], 6: []}
    for item in ranges:
        net = ipaddress.ip_network(item.split("%")[0], strict=False)
        by_version[net.version].append(net)
    return {v: [str(n) for n in ipaddress.collapse_addresses(nets)] for v, nets in by_version.items()}


def ruleset(host: list[str]) -> str:
    """The nftables table of a networked run: refuse exactly the listed ranges and the host's addresses."""
    refused = _collapsed([*REFUSED_V4, *REFUSED_V6, *host])
    return f"""\
table inet {TABLE} {{
    chain output {{
        type filter hook output priority 0; policy accept;
        # Traffic that stays inside the run's namespace (its loopback and its own addresses, which
        # pasta copies from the host: they lead back to the namespace, never to the host). Nothing
        # but the run's own processes listens here (no port forwards), and the replies of the
        # rejections below arrive this way.
        oifname "lo" accept
        # pasta's DNS forwarder: the one way to the host's resolver.
        ip daddr {DNS_FORWARDER} udp dport 53 accept
        # "Administratively prohibited": connect() fails at once with EHOSTUNREACH, which tells a
        # refusal by this filter apart from a closed port (ECONNREFUSED); sendto() gets EPERM.
        ip daddr {{ {", ".join(refused[4])} }} counter reject with icmpx type admin-prohibited
        ip6 daddr {{ {", ".join(refused[6])} }} counter reject with icmpx type admin-prohibited
    }}
}}
"""


def sandbox_files(run_dir: Path) -> list[tuple[Path, str]]:
    """Files bound into a networked sandbox: its resolver is pasta's forwarder, not the host's."""
    resolv = run_dir / "resolv.conf"
    resolv.write_text(f"nameserver {DNS_FORWARDER}\noptions timeout:2 attempts:2\n")
    hosts = run_dir / "hosts"
    hosts.write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
    return [(resolv, "/etc/resolv.conf"), (hosts, "/etc/hosts")]


# --- one run's namespace ----------------------------------------------------------


@dataclass
class RunNetwork:
    """The network namespace of one run, with its holder and pasta; `stop()` removes all of it."""

    holder: subprocess.Popen | None = None
    nat: subprocess.Popen | None = None
    #: The worker's descriptor of the run's network namespace (held until stop()).
    netns_fd: int = -1
    workdir: str = ""
    rules: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def netns_path(self) -> str:
        """The namespace, by the worker's own descriptor (valid while the worker lives and until stop())."""
        return f"/proc/{os.getpid()}/fd/{self.netns_fd}"

    def enter_argv(self) -> list[str]:
        """Prefix that runs a command (bwrap) in the run's network namespace."""
        return [tools()["nsenter"] or "nsenter", f"--net={self.netns_path}", "--"]

    def pids(self) -> list[int]:
        """Every process of this run network (holder, unshare, the PID namespace's init, pasta)."""
        from scripts_runner.sandbox import descendants

        found = []
        for proc in (self.holder, self.nat):
            if proc is not None:
                found += [proc.pid, *descendants(proc.pid)]
        return found

    def stop(self) -> None:
        for proc in (self.nat, self.holder):
            if proc is None:
                continue
            try:
                proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                logger.warning("run network process %s did not end", proc.pid)
        self.nat = self.holder = None
        if self.netns_fd >= 0:
            os.close(self.netns_fd)
            self.netns_fd = -1
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = ""


def _netns_inode(path: str) -> int:
    return os.stat(path).st_ino


def _sweep_workdirs() -> None:
    """Remove pasta's start-up directories that a killed worker left (only ones older than any run)."""
    horizon = time.time() - conf.WALL_SECONDS - 600
    root = tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(root) if n.startswith(WORKDIR_PREFIX)]
    except OSError:
        return
    for name in names:
        path = os.path.join(root, name)
        try:
            if os.lstat(path).st_mtime < horizon:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def _fail(net: RunNetwork, message: str) -> None:
    detail = ""
    if net.workdir:
        try:
            lines = [line for line in Path(net.workdir, "pasta.log").read_text(errors="replace").splitlines()
                     if line and "syslog" not in line]
            detail = " ".join(lines[-3:])
        except OSError:
            pass
    net.stop()
    raise NetworkUnavailable(f"{message}{': ' + detail if detail else ''}")


def start() -> RunNetwork:
    """Create the run's namespace, load the filter, attach pasta; raise NetworkUnavailable if anything fails."""
    ok, why = status()
    if not ok:
        raise NetworkUnavailable(why)
    found = tools()
    uid = str(conf.NETWORK_UID)
    net = RunNetwork()
    net.rules = ruleset(host_addresses())
    _sweep_workdirs()
    net.workdir = tempfile.mkdtemp(prefix=WORKDIR_PREFIX)
    os.chown(net.workdir, int(uid), int(uid))
    own_netns = _netns_inode("/proc/self/ns/net")
    try:
        # setpriv sets the parent-death signal after changing uid, so it holds; entering the new user
        # namespace keeps it (same owner). The holder prints once both namespaces exist.
        net.holder = subprocess.Popen(
            [found["setpriv"], "--reuid", uid, "--regid", uid, "--clear-groups", "--pdeathsig", "KILL", "--",
             found["unshare"], "--user", "--map-root-user", "--net", "--",
             "/bin/sh", "-c", "echo up && exec sleep 2147483647"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        if net.holder.stdout.readline().strip() != b"up":
            error = net.holder.stderr.read().decode(errors="replace").strip()
            _fail(net, f"could not create the run's network namespace ({error[-300:] or 'no reason given'})")
        net.holder.stdout.close()
        net.holder.stderr.close()
        net.netns_fd = os.open(f"/proc/{net.holder.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        if os.fstat(net.netns_fd).st_ino == own_netns:  # never the worker's namespace
            _fail(net, "the run's network namespace is the worker's own")
        done = subprocess.run([found["nsenter"], f"--net={net.netns_path}", "--", found["nft"], "-f", "-"],
                              input=net.rules.encode(), capture_output=True, timeout=30)
        if done.returncode != 0:
            _fail(net, f"could not load the network filter ({done.stderr.decode(errors='replace').strip()[-300:]})")
        pidfile = os.path.join(net.workdir, "pasta.pid")
        with open(os.path.join(net.workdir, "pasta.log"), "wb") as log:
            net.nat = subprocess.Popen(
                [found["setpriv"], "--pdeathsig", "KILL", "--",
                 found["unshare"], "--pid", "--fork", "--kill-child=SIGKILL", "--",
                 "/bin/sh", "-c", 'pasta="$1"; shift; "$pasta" "$@" & wait $!', "sh", found["pasta"],
                 "--foreground", "--quiet", "--runas", f"{uid}:{uid}", "--config-net",
                 "--tcp-ports", "none", "--udp-ports", "none", "--tcp-ns", "none", "--udp-ns", "none",
                 "--no-map-gw", "--dns-forward", DNS_FORWARDER,
                 "--userns", f"/proc/{net.holder.pid}/ns/user", "--netns", f"/proc/{net.holder.pid}/ns/net",
                 "--pid", pidfile],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            )
        # pasta writes its PID file once the namespace's interface is configured.
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if os.path.getsize(pidfile) > 0:
                    break
            except OSError:
                pass
            if net.nat.poll() is not None:
                _fail(net, "pasta (the user-mode NAT) stopped while starting")
            if time.monotonic() > deadline:
                _fail(net, f"pasta (the user-mode NAT) did not start within {START_TIMEOUT:g} s")
            time.sleep(0.002)
    except NetworkUnavailable:
        raise
    except Exception as exc:
        net.stop()
        raise NetworkUnavailable(f"could not set up the run's network: {exc}") from exc
    return net
