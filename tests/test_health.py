"""The health probe: database, channel layer round trip and worker heartbeats."""

import asyncio
import time

import pytest
from channels.layers import InMemoryChannelLayer

from core import selectors


@pytest.mark.django_db
def test_health_round_trips_the_configured_channel_layer(settings):
    body = selectors.health_status()
    assert body["database"]["ok"] is True
    assert body["channel_layer"] == {
        "ok": True,
        "backend": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1],
    }
    # No worker has beaten in this test, so the whole status is not ok.
    assert body["worker"]["ok"] is False and body["ok"] is False


@pytest.mark.django_db
def test_repeated_probes_do_not_disturb_each_other():
    """Each probe runs on its own event loop and layer instance; none may hang or fail."""
    results = [selectors.health_status()["channel_layer"]["ok"] for _ in range(10)]
    assert results == [True] * 10


class SilentLayer(InMemoryChannelLayer):
    async def receive(self, channel):
        await asyncio.sleep(3600)


@pytest.mark.django_db
def test_a_layer_that_never_answers_is_reported_down_not_hung(monkeypatch, admin_user, client):
    monkeypatch.setattr(selectors, "LAYER_TIMEOUT", 0.3)
    monkeypatch.setattr(selectors.channel_layers, "make_backend", lambda name: SilentLayer())
    client.force_login(admin_user)
    started = time.monotonic()
    response = client.get("/api/health/")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    layer = response.json()["channel_layer"]
    assert layer["ok"] is False and layer["error"] == "no reply within 0.3 s"


def test_clearing_the_test_cache_leaves_other_redis_data_alone():
    """Parallel test processes share one Redis: clearing one's cache must not FLUSHDB the other's
    queue, channel messages or cache (that once made a health probe wait forever)."""
    import os

    import redis
    from django.core.cache.backends.redis import RedisCache

    from tests.support import clear_own_cache

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    mine = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url, "KEY_PREFIX": "ownA"}
    theirs = dict(mine, KEY_PREFIX="ownB")
    cache_a = RedisCache(url, {"KEY_PREFIX": "ownA"})
    cache_b = RedisCache(url, {"KEY_PREFIX": "ownB"})
    raw = redis.Redis.from_url(url)
    try:
        cache_a.set("counter", 1)
        cache_b.set("counter", 2)
        raw.set("asgi-other:queue", "x")
        clear_own_cache(cache_a, mine)
        assert cache_a.get("counter") is None
        assert cache_b.get("counter") == 2
        assert raw.get("asgi-other:queue") == b"x"
    finally:
        clear_own_cache(cache_b, theirs)
        raw.delete("asgi-other:queue")


def test_redis_keys_are_namespaced_by_the_cluster_name(settings):
    """With Redis configured, the cache and the channel layer share the queue's namespace."""
    import importlib
    import os

    from config import settings as settings_module

    old = {k: os.environ.get(k) for k in ("REDIS_URL", "Q_CLUSTER_NAME")}
    os.environ.update({"REDIS_URL": "redis://127.0.0.1:6379/0", "Q_CLUSTER_NAME": "deploy7"})
    try:
        fresh = importlib.reload(settings_module)
        assert fresh.CACHES["default"]["KEY_PREFIX"] == "deploy7"
        assert fresh.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] == "asgi-deploy7"
        assert fresh.Q_CLUSTER["name"] == "deploy7"
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        importlib.reload(settings_module)


@pytest.mark.django_db
def test_liveness_probe_answers_ok_to_anyone_and_says_nothing_else(client, settings, django_assert_num_queries):
    settings.SECURE_SSL_REDIRECT = True  # as in production: the probe comes over plain HTTP
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok" and response["Content-Type"].startswith("text/plain")
    assert client.post("/healthz").status_code == 405
    assert client.get("/health/").status_code == 301  # every other page still goes to HTTPS
    assert "login" in client.get("/health/", secure=True)["Location"]  # and needs staff


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_loses_redis_shows_as_down_within_30_seconds(tmp_path):
    """A real worker cluster on a Redis of the test's own: up while Redis answers; once Redis is gone the
    worker still beats into the database, but health reports it down, saying why, within 30 s."""
    import os
    import shutil
    import signal
    import subprocess
    import sys

    from conftest import BASE_DIR, database_url
    from tests.support import free_port, wait_until

    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    redis_proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    env = dict(os.environ, DATABASE_URL=database_url(), REDIS_URL=f"redis://127.0.0.1:{port}/0",
               DJANGO_SECRET_KEY="health-test-" + "k" * 40, Q_CLUSTER_NAME=f"healthtest{port}",
               PLATFORM_MEDIA_ROOT=str(tmp_path), Q_WORKERS="1", WORKER_ID=f"health-test-{port}")
    env.pop("PYTEST_VERSION", None)
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=BASE_DIR, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # Other tests' workers may beat into the same database: this test judges its own instance.
        def this_worker():
            return next((p for p in selectors.health_status()["worker"]["processes"]
                         if p["name"] == f"health-test-{port}"), None)

        wait_until(lambda: (this_worker() or {}).get("up"), timeout=60, message="the worker's first heartbeat")
        redis_proc.kill()
        redis_proc.wait(timeout=10)
        lost_at = time.monotonic()

        def reported_down():
            status = this_worker()
            return status is not None and not status["up"] and status["problem"]

        wait_until(reported_down, timeout=30, interval=0.5, message="the worker reported down")
        assert time.monotonic() - lost_at <= 30
        assert this_worker()["problem"].startswith("cannot reach Redis"), this_worker()
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        if redis_proc.poll() is None:
            redis_proc.kill()


@pytest.mark.django_db
def test_a_worker_that_cannot_reach_the_database_says_so_through_redis(settings):
    """Its database row goes stale; the short-lived mark it keeps in Redis says why."""
    if not settings.REDIS_URL:
        pytest.skip("needs Redis")
    import redis
    from datetime import timedelta

    from django.utils import timezone

    from core import workerhost
    from core.models import WorkerHeartbeat

    name = f"db-less-{time.monotonic_ns()}"
    WorkerHeartbeat.objects.create(name=name, pid=7, host="h", seen_at=timezone.now() - timedelta(minutes=2))
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        workerhost._database_mark(name, "cannot reach the database: connection refused")
        entry = next(p for p in selectors.health_status()["worker"]["processes"] if p["name"] == name)
        assert entry["up"] is False and entry["database_ok"] is False
        assert entry["problem"] == "cannot reach the database: connection refused"
        client.delete(workerhost.database_mark_key(name))
        entry = next(p for p in selectors.health_status()["worker"]["processes"] if p["name"] == name)
        assert entry["problem"] == f"no heartbeat for {settings.WORKER_STALE_SECONDS} s"
    finally:
        client.delete(workerhost.database_mark_key(name))
        client.close()
