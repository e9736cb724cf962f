from datetime import timedelta

from django.db import connection
from django.utils import timezone

from core.models import WorkerHeartbeat
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


def health_status() -> dict:
    result: dict = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        result["database"] = {"ok": True, "vendor": connection.vendor}
    except Exception as exc:
        result["database"] = {"ok": False, "error": str(exc)}

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    try:
        name = async_to_sync(layer.new_channel)()
        async_to_sync(layer.send)(name, {"type": "health.ping"})
        received = async_to_sync(layer.receive)(name)
        result["channel_layer"] = {"ok": received.get("type") == "health.ping", "backend": type(layer).__name__}
    except Exception as exc:
        result["channel_layer"] = {"ok": False, "backend": type(layer).__name__, "error": str(exc)}

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
