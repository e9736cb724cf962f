"""Fixtures shared by every app's tests.

- users: `user`, `other_user`, `admin_user` (staff), `root_user`, `make_user`
- API: `api_client`, `auth_client(user)` (a real hashed API token; `tests.support.api_token(user)` for a bare key)
- jobs: `commits` (run the on_commit callbacks a commit would), `sync_jobs` (the same, django-q2 running
  tasks inline)
- processes: `live_platform` (real uvicorn ASGI server + real qcluster worker on the test database)
- browser: `browser_page` (Playwright driving Debian's Chromium), `csp_browser_page` (the same under the real
  Content-Security-Policy), `login_page(page, user)`
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test thread; the ORM calls a
# test makes around it are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from tests.support import (  # noqa: F401  (re-exported for tests)
    PASSWORD, api_token, clear_own_cache, free_port, token_header, token_subprotocols, token_ws_headers, wait_until,
)
BASE_DIR = Path(__file__).resolve().parent
LIVE_QUEUE = f"live{os.getpid()}"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.PLATFORM_FILE_CACHE_DIR = str(tmp_path / "file-cache")


# --- an S3-compatible store ---------------------------------------------------------------------

S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "platform-tests", "AWS_SECRET_ACCESS_KEY": "platform-tests-secret",
                  "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class S3Store:
    endpoint: str
    bucket: str
    prefix: str
    url: str  # the PLATFORM_STORAGE_URL that selects it

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def keys(self) -> list[str]:
        """The stored object names (without the prefix) the bucket holds."""
        listed = self.client().list_objects_v2(Bucket=self.bucket, Prefix=self.prefix + "/")
        return sorted(item["Key"][len(self.prefix) + 1:] for item in listed.get("Contents", ()))


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto's server mode) on 127.0.0.1 for the session; answers its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_store(s3_server, settings, monkeypatch):
    """The default storage is a new bucket on the S3 server, selected as PLATFORM_STORAGE_URL=s3://… does."""
    import uuid

    from core.storage import storage_settings

    for key, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    bucket = f"platform-{uuid.uuid4().hex[:16]}"
    store = S3Store(endpoint=s3_server, bucket=bucket, prefix="media",
                    url=f"s3://{bucket}/media?endpoint_url={s3_server}&region=us-east-1&addressing_style=path")
    store.client().create_bucket(Bucket=bucket)
    settings.STORAGES = {**settings.STORAGES, "default": storage_settings(store.url)[0]}
    yield store


@pytest.fixture(params=["local", "s3"])
def any_store(request):
    """Run the test on local disk and on the S3-compatible store: the S3Store, or None for local disk."""
    return request.getfixturevalue("s3_store") if request.param == "s3" else None


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test gets a new channel-layer instance. The Redis layer binds its receive lock to the
    event loop of the consumer that first receives; pytest-asyncio gives every test a new loop, so
    an instance shared across tests can fail with "bound to a different event loop". (A server
    process runs all its consumers on one loop, so this only concerns tests.)"""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters and other cached state never leak between tests."""
    _clear_cache()
    yield
    _clear_cache()


def _clear_cache():
    from django.conf import settings as dj_settings
    from django.core.cache import cache

    clear_own_cache(cache, dj_settings.CACHES["default"])


@pytest.fixture(scope="session", autouse=True)
def _drop_leftover_connections(django_db_setup, django_db_blocker):
    """Before the test database is dropped, end other sessions on it (server and
    worker processes, consumer threads), so PostgreSQL lets it go."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


# --- figures printed at the end of the run -----------------------------------------------

@pytest.fixture
def report(request):
    """`report("latency ... ms")`: a line shown in the run's closing summary (works under xdist too)."""
    return lambda line: request.node.user_properties.append(("figure", line))


def pytest_terminal_summary(terminalreporter):
    lines = []
    for reports in terminalreporter.stats.values():
        for rep in reports:
            if getattr(rep, "when", None) == "call":
                lines.extend(value for key, value in getattr(rep, "user_properties", []) if key == "figure")
    if lines:
        terminalreporter.section("measured figures")
        for line in lines:
            terminalreporter.write_line(line)


# --- users -------------------------------------------------------------------------


@pytest.fixture
def make_user(db):
    from accounts.models import User

    counter = {"n": 0}

    def make(username: str | None = None, *, is_admin: bool = False, is_root: bool = False, **extra):
        counter["n"] += 1
        username = username or f"user{counter['n']}"
        user = User(
            username=username,
            email=extra.pop("email", f"{username}@example.com"),
            is_staff=is_admin or is_root,
            is_superuser=is_root,
            **extra,
        )
        user.set_password(PASSWORD)
        user.save()
        return user

    return make


@pytest.fixture
def user(make_user):
    return make_user("alice")


@pytest.fixture
def other_user(make_user):
    return make_user("bob")


@pytest.fixture
def admin_user(make_user):
    return make_user("admin1", is_admin=True)


@pytest.fixture
def root_user(make_user):
    return make_user("root", is_root=True)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def auth_client(db):
    """`auth_client(user)` → an APIClient sending a real (new) API token of that user; `.token` is its key."""
    from rest_framework.test import APIClient

    def make(user):
        key = api_token(user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        client.token = key
        return client

    return make


# --- jobs inline -----------------------------------------------------------------------


def _inside_a_transaction() -> bool:
    """Whether the code under test has a transaction of its own open (the test's are not counted)."""
    from django.db import connections

    return any(
        not getattr(block, "_from_testcase", False)
        for connection in connections.all(initialized_only=True) for block in connection.atomic_blocks
    )


def _from_django_q_scheduler() -> bool:
    """django-q2's scheduler queues due schedules inside its own transaction, on purpose: the schedule
    rows it locked stay locked until their tasks are queued."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == "django_q.scheduler":
            return True
        frame = frame.f_back
    return False


@pytest.fixture(autouse=True)
def _tasks_are_queued_after_commit():
    """In every test, a task queued while the code's own transaction is still open fails the test: work
    is queued on commit (transaction.on_commit), or a worker could start it before its rows exist."""
    from django_q.signals import pre_enqueue

    early = []

    def check(sender, task, **kwargs):
        if _inside_a_transaction() and not _from_django_q_scheduler():
            early.append(task.get("func"))

    pre_enqueue.connect(check, weak=False, dispatch_uid="tests.queued_after_commit")
    yield
    pre_enqueue.disconnect(dispatch_uid="tests.queued_after_commit")
    assert not early, f"queued inside an open transaction (use transaction.on_commit): {early}"


class Commits:
    """A test's transaction never commits, so the on_commit callbacks of the code under test wait in it.
    `commit()` runs those registered since the last call, as the end of the code's transaction would
    (pytest-django's `django_capture_on_commit_callbacks(execute=True)`, callbacks they add included)."""

    def __init__(self, capture):
        self._capture = capture
        self.queued_inside_a_transaction: list[str] = []
        self._open()

    def _open(self):
        self._block = self._capture(execute=True)
        self._callbacks = self._block.__enter__()

    def commit(self) -> int:
        """Run what a commit would; returns how many callbacks ran."""
        self._block.__exit__(None, None, None)
        ran = len(self._callbacks)
        self._open()
        return ran

    def check_enqueue(self, func) -> None:
        """For a test that collects tasks instead of sending them (django-q2's own check sees none)."""
        if _inside_a_transaction():
            self.queued_inside_a_transaction.append(str(func))

    def close(self) -> None:
        self._block.__exit__(None, None, None)
        assert not self.queued_inside_a_transaction, (
            f"queued inside an open transaction (use transaction.on_commit): {self.queued_inside_a_transaction}"
        )


@pytest.fixture
def commits(django_capture_on_commit_callbacks):
    """`commits.commit()`: the code under test's transaction ends (see Commits)."""
    tracker = Commits(django_capture_on_commit_callbacks)
    yield tracker
    tracker.close()


@pytest.fixture
def sync_jobs(monkeypatch, commits):
    """django-q2 runs tasks in-process, when they are queued: after `sync_jobs.commit()`, which runs
    the on_commit callbacks the code under test registered (Commits)."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)
    return commits


# --- real processes ----------------------------------------------------------------------


def database_url() -> str:
    from django.db import connection

    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{conf['NAME']}"
    user = conf.get("USER") or ""
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = conf.get("HOST") or "127.0.0.1"
    port = f":{conf['PORT']}" if conf.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{conf['NAME']}"


@dataclass
class LivePlatform:
    url: str
    ws_url: str
    env: dict
    media_root: str
    processes: list = field(default_factory=list)
    logs: list = field(default_factory=list)

    def output(self) -> str:
        text = []
        for path in self.logs:
            try:
                text.append(Path(path).read_text(errors="replace")[-4000:])
            except OSError:
                pass
        return "\n---\n".join(text)

    def stop_worker(self, sig=signal.SIGKILL) -> None:
        """Kill the worker cluster (and its children) as a crash would."""
        worker = self.processes[1]
        try:
            os.killpg(worker.pid, sig)
        except ProcessLookupError:
            pass
        worker.wait(timeout=10)

    def start_worker(self) -> None:
        log = open(self.logs[1], "ab")
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=BASE_DIR, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.processes[1] = proc


def _wait_http(url: str, timeout: float, procs) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"process {proc.args} exited early with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout}s")


@pytest.fixture(scope="session")
def _live_platform_session(django_db_setup, django_db_blocker, tmp_path_factory):
    from django.conf import settings as dj_settings

    port = free_port()
    media = str(tmp_path_factory.mktemp("live-media"))
    logdir = tmp_path_factory.mktemp("live-logs")
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url(),
            "PLATFORM_MEDIA_ROOT": media,
            "PLATFORM_FILE_CACHE_DIR": str(tmp_path_factory.mktemp("live-file-cache")),
            "Q_CLUSTER_NAME": dj_settings.Q_CLUSTER["name"],
            # The live worker reads its own queue: tasks queued by tests that
            # don't use it (and run jobs inline themselves) are never taken.
            "Q_QUEUE_NAME": LIVE_QUEUE,
            "DJANGO_DEBUG": "true",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
            # Sweeps use a pool of 2 processes whatever the core count (tests/e2e/test_backtest_sweep_pool.py).
            "BACKTEST_SWEEP_PROCESSES": "2",
        }
    )
    env.pop("PYTEST_VERSION", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    web_log, worker_log = str(logdir / "web.log"), str(logdir / "worker.log")
    web = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--ws", "websockets", "--lifespan", "off", "--log-level", "warning"],
        cwd=BASE_DIR, env=env, stdout=open(web_log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=BASE_DIR, env=env,
        stdout=open(worker_log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    platform = LivePlatform(
        url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}", env=env, media_root=media,
        processes=[web, worker], logs=[web_log, worker_log],
    )
    try:
        _wait_http(platform.url + "/accounts/login/", 60, [web])
    except Exception:
        for proc in platform.processes:
            proc.kill()
        raise RuntimeError("live platform did not start:\n" + platform.output()) from None
    yield platform
    for proc in platform.processes:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in platform.processes:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def live_platform(_live_platform_session, transactional_db, settings, monkeypatch):
    """A real ASGI server and a real worker cluster sharing the test database."""
    from django_q.conf import Conf

    settings.MEDIA_ROOT = _live_platform_session.media_root
    monkeypatch.setattr(Conf, "CLUSTER_NAME", LIVE_QUEUE)
    if _live_platform_session.processes[1].poll() is not None:
        _live_platform_session.start_worker()
    yield _live_platform_session


# --- browser --------------------------------------------------------------------------------


@pytest.fixture
def _browser():
    # Function scope: Playwright's sync API keeps an event loop on this thread
    # while it runs, which would break asyncio.run() in later tests.
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Chromium not found at {CHROMIUM}; CI requires the browser tests to run")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                  "--no-first-run", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture
def browser_page(_browser):
    # bypass_csp: Playwright's wait_for_function runs its predicate with eval inside the page, which the
    # platform's Content-Security-Policy refuses. The policy itself is checked with `csp_browser_page`.
    context = _browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    context.set_default_timeout(15000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def csp_browser_page(_browser):
    """A page under the platform's real Content-Security-Policy (use no wait_for_function: eval is refused)."""
    context = _browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def login_page():
    def login(page, platform, user, password: str = PASSWORD):
        page.goto(platform.url + "/accounts/login/")
        page.fill("input[name=login]", user.username)
        page.fill("input[name=password]", password)
        page.click("form button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        return page

    return login


