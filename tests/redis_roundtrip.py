"""Run by tests/test_redis_password.py in a process of its own (settings read REDIS_URL at start-up): one
round-trip through every user of Redis — the cache, the channel layer, the django-q2 broker and the health
probe — printed as JSON (`true` or the error)."""

import json
import os
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()
out = {}


def step(name, fn):
    try:
        out[name] = fn()
    except Exception as exc:
        out[name] = f"error: {type(exc).__name__}: {exc}"[:300]



def cache_roundtrip():
    from django.core.cache import cache
    key = "rt-" + uuid.uuid4().hex
    cache.set(key, {"v": 42}, 30)
    return cache.get(key) == {"v": 42}


def layer_roundtrip():
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    layer = get_channel_layer()
    async def go():
        name = await layer.new_channel()
        await layer.send(name, {"type": "rt.ping", "n": 7})
        message = await layer.receive(name)
        return message == {"type": "rt.ping", "n": 7}
    return async_to_sync(go)()


def broker_roundtrip():
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage
    from django_q.tasks import async_task
    broker = get_broker()
    # A platform task (only those reach the queue); it is taken off the queue here, never run.
    task_id = async_task("core.tasks.worker_check_run", 1.5, broker=broker)
    for _ in range(50):
        got = broker.dequeue()
        if got:
            ack, payload = got[0]
            task = SignedPackage.loads(payload)
            broker.acknowledge(ack)
            return task["id"] == task_id and task["func"] == "core.tasks.worker_check_run" and list(task["args"]) == [1.5]
    return False


def health():
    from core.selectors import health_status
    return health_status()["channel_layer"]


step("cache", cache_roundtrip)
step("channel_layer", layer_roundtrip)
step("broker", broker_roundtrip)
step("health", health)
print(json.dumps(out))
