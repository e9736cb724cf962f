"""A password in REDIS_URL works everywhere Redis is used: against a real redis-server the test starts with
`--requirepass` (and an ACL user), the cache, the channel layer, the django-q2 broker and the health probe
each make a round-trip with `redis://:secret@…` and `redis://user:secret@…`, and fail without it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
REDIS_SERVER = shutil.which("redis-server")
PARTS = ("cache", "channel_layer", "broker", "health")


@pytest.fixture(scope="module")
def protected_redis(tmp_path_factory):
    if not REDIS_SERVER:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server not found; CI requires this test to run")
        pytest.skip("redis-server is not installed")
    import redis

    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--requirepass", "pass-Word-1",
         "--user", "platform", "on", ">user-Secret-2", "~*", "&*", "+@all"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def ready():
        try:
            return redis.Redis(port=port, password="pass-Word-1").ping()
        except redis.ConnectionError:
            assert server.poll() is None, "redis-server exited"
            return False

    try:
        wait_until(ready, timeout=20, message="redis-server to accept connections")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def roundtrip(url: str, cluster: str) -> dict:
    env = dict(os.environ, REDIS_URL=url, Q_CLUSTER_NAME=cluster)
    env.pop("Q_QUEUE_NAME", None)
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "redis_roundtrip.py")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("url", [
    "redis://:pass-Word-1@127.0.0.1:{port}/0",
    "redis://platform:user-Secret-2@127.0.0.1:{port}/1",
], ids=["password", "user-and-password"])
def test_every_redis_user_works_with_a_password(protected_redis, url):
    result = roundtrip(url.format(port=protected_redis), cluster=f"pw{os.getpid()}")
    assert {part: result[part] for part in PARTS[:3]} == {"cache": True, "channel_layer": True, "broker": True}
    assert result["health"] == {"ok": True, "backend": "RedisChannelLayer"}


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:{port}/0",
    "redis://:wrong@127.0.0.1:{port}/0",
], ids=["no-password", "wrong-password"])
def test_without_the_password_nothing_gets_through(protected_redis, url):
    result = roundtrip(url.format(port=protected_redis), cluster=f"nopw{os.getpid()}")
    for part in PARTS[:3]:
        assert str(result[part]).startswith("error: "), (part, result[part])
        assert "pass-Word-1" not in result[part]
    assert result["health"]["ok"] is False


def test_error_pages_hide_the_redis_password(settings):
    from django.views.debug import get_exception_reporter_filter

    settings.REDIS_URL = "redis://:pass-Word-1@10.0.0.5:6379/0"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": settings.REDIS_URL}}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [{"address": settings.REDIS_URL}]}}}
    settings.Q_CLUSTER = {"name": "x", "redis": settings.REDIS_URL}
    shown = json.dumps(get_exception_reporter_filter(None).get_safe_settings(), default=str)
    assert "pass-Word-1" not in shown and "10.0.0.5" not in shown
    assert "Q_CLUSTER" in shown and "CACHES" in shown


@pytest.mark.parametrize("url,warned", [
    ("redis://10.0.0.5:6379/0", True),
    ("redis://redis.internal:6379/0", True),
    ("redis://:pass-Word-1@10.0.0.5:6379/0", False),
    ("redis://platform:user-Secret-2@redis.internal:6379/0", False),
    ("redis://127.0.0.1:6379/0", False),
    ("", False),
])
def test_deploy_check_warns_about_shared_redis_without_a_password(settings, url, warned):
    from core.checks import redis_password_check

    settings.REDIS_URL = url
    warnings = redis_password_check(None)
    assert [w.id for w in warnings] == (["platform.W001"] if warned else [])
    assert all("Redis must have a password" in w.hint for w in warnings)
