import asyncio
import uuid
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.models import WorkerCheck, WorkerHeartbeat
from core.permissions import get_for_viewer, visible_to
from core.services import job_models


def recent_jobs(*, user, limit: int = 20) -> list:
    """The user's latest jobs across every app, newest first (one query per job kind)."""
    jobs = []
    for model in job_models():
        jobs.extend(model.objects.filter(owner=user).order_by("-created_at")[:limit])
    jobs.sort(key=lambda job: job.created_at, reverse=True)
    return jobs[:limit]


def job_counts(*, user) -> dict[str, int]:
    counts: dict[str, int] = {}
    for model in job_models():
        for row in model.objects.filter(owner=user).values_list("status", flat=True):
            counts[row] = counts.get(row, 0) + 1
    return counts


LAYER_TIMEOUT = 3


async def _channel_layer_roundtrip() -> tuple[str, bool]:
    """Send a ping to a fresh channel and read it back, on a layer instance of our own.

    The shared layer keeps per-event-loop receive state for the consumers of this process;
    a probe must neither disturb it nor hang on it, so it gets its own connection and a timeout.
    """
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    backend = type(layer).__name__
    name = "health.%s" % uuid.uuid4().hex
    try:
        await layer.send(name, {"type": "health.ping"})
        message = await asyncio.wait_for(layer.receive(name), timeout=LAYER_TIMEOUT)
        return backend, message.get("type") == "health.ping"
    finally:
        close = getattr(layer, "close_pools", None)
        if close is not None:
            await close()


def worker_check_latest(*, user) -> WorkerCheck | None:
    return WorkerCheck.objects.filter(owner=user).order_by("-created_at").first()


def worker_check_get_for_viewer(*, user, pk) -> WorkerCheck | None:
    """Who may see a worker check: its owner and staff."""
    return get_for_viewer(visible_to(WorkerCheck.objects.all(), user), pk)


def health_status() -> dict:
    result: dict = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        result["database"] = {"ok": True, "vendor": connection.vendor}
    except Exception as exc:
        result["database"] = {"ok": False, "error": str(exc)}

    layer_backend = settings.CHANNEL_LAYERS[DEFAULT_CHANNEL_LAYER]["BACKEND"].rsplit(".", 1)[-1]
    try:
        _, received = async_to_sync(_channel_layer_roundtrip)()
        result["channel_layer"] = {"ok": received, "backend": layer_backend}
    except Exception as exc:
        error = "no reply within %s s" % LAYER_TIMEOUT if isinstance(exc, TimeoutError) else str(exc)
        result["channel_layer"] = {"ok": False, "backend": layer_backend, "error": error}

    fresh_after = timezone.now() - timedelta(seconds=30)
    try:
        beats = list(WorkerHeartbeat.objects.order_by("-seen_at")[:50])
        live = [b for b in beats if b.seen_at >= fresh_after]
        result["worker"] = {
            "ok": bool(live),
            "live_processes": len(live),
            "last_seen": beats[0].seen_at.isoformat() if beats else None,
        }
    except Exception as exc:
        result["worker"] = {"ok": False, "error": str(exc)}
    result["ok"] = all(part["ok"] for part in result.values() if isinstance(part, dict))
    return result
