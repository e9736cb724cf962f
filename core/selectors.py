import asyncio
import functools
import uuid
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

from django.conf import settings
from django.db import connection, connections
from django.db.models import Count, IntegerField, Value
from django.utils import timezone

from core.models import WorkerCheck, WorkerHeartbeat
from core.permissions import get_for_viewer, visible_to
from core.recovery import job_models


# The dashboard's two statements span every job table; building them through the ORM on every request
# cost more than running them. They are compiled once per process, with this number standing for the
# user's id, and run with the id put in its place.
_OWNER_MARK = -7_919_113


@functools.lru_cache(maxsize=16)
def _across_kinds(statement: str, alias: str, limit: int = 0) -> tuple[str, tuple]:
    parts = []
    for index, model in enumerate(job_models()):
        rows = model.objects.filter(owner_id=_OWNER_MARK).order_by()
        if statement == "newest":
            part = rows.annotate(kind=Value(index, output_field=IntegerField())).values_list("kind", "pk",
                                                                                           "created_at")
            if connections[alias].features.supports_slicing_ordering_in_compound:
                # Each kind's newest `limit` first (PostgreSQL): read from the start of its (owner, -created_at)
                # index and merged, so a user with many jobs costs no more than one with a few.
                part = part.order_by("-created_at")[:limit]
            parts.append(part)
        else:
            parts.append(rows.values("status").annotate(n=Count("pk")).values_list("status", "n"))
    combined = parts[0].union(*parts[1:], all=True)
    if statement == "newest":
        combined = combined.order_by("-created_at")[:limit]
    return combined.query.get_compiler(using=alias).as_sql()


def _run_across_kinds(statement: str, *, user, limit: int = 0) -> list[tuple]:
    if not job_models():
        return []
    sql, params = _across_kinds(statement, connection.alias, limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk if p == _OWNER_MARK else p for p in params])
        return cursor.fetchall()


# What a dashboard row shows of every job.
_ROW_FIELDS = ("owner", "status", "progress", "message", "created_at")


def recent_jobs(*, user, limit: int = 20) -> list:
    """The user's latest jobs across every app, newest first.

    One query picks the newest `limit` across every kind; then one query per kind that has any of them
    loads those rows with only the columns a row shows and its title reads (`Job.title_related`,
    `Job.title_fields`), unordered (they are sorted here).
    """
    models = job_models()
    newest = _run_across_kinds("newest", user=user, limit=limit)
    jobs = []
    for index, model in enumerate(models):
        pks = [pk for kind, pk, _ in newest if kind == index]
        if pks:
            rows = model.objects.filter(pk__in=pks).order_by().only(*_ROW_FIELDS, *model.title_related,
                                                                    *model.title_fields)
            if model.title_related:  # select_related() without names would follow every relation
                rows = rows.select_related(*model.title_related)
            jobs.extend(rows)
    jobs.sort(key=lambda job: (job.created_at, job.pk), reverse=True)
    return jobs


def job_counts(*, user) -> dict[str, int]:
    """How many of the user's jobs are in each status, across every kind: one grouped query."""
    counts: dict[str, int] = {}
    for status, n in _run_across_kinds("counts", user=user):
        counts[status] = counts.get(status, 0) + n
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

    try:
        result["worker"] = worker_instances_status()
    except Exception as exc:
        result["worker"] = {"ok": False, "error": str(exc)}
    result["ok"] = all(part["ok"] for part in result.values() if isinstance(part, dict))
    return result


def _database_marks() -> dict[str, dict]:
    """With Redis: what each worker instance last said there about reaching the database."""
    if not getattr(settings, "REDIS_URL", ""):
        return {}
    import json

    import redis

    from core.workerhost import BROKER_TIMEOUT, database_mark_key

    prefix = database_mark_key("")
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=BROKER_TIMEOUT,
                                  socket_connect_timeout=BROKER_TIMEOUT)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        values = client.mget(keys) if keys else []
    except redis.RedisError:
        return {}
    finally:
        client.close()
    marks = {}
    for key, value in zip(keys, values):
        try:
            marks[key.decode()[len(prefix):]] = json.loads(value)
        except (TypeError, ValueError, AttributeError):
            continue
    return marks


def worker_instances_status() -> dict:
    """Each worker cluster instance: last heartbeat, whether it reaches the broker and the database, the
    jobs it runs and the tasks it holds. An instance is up when its heartbeat is fresh and it reaches the
    broker; one whose database row went stale but that still says so in Redis cannot reach the database."""
    stale_seconds = settings.WORKER_STALE_SECONDS
    fresh_after = timezone.now() - timedelta(seconds=stale_seconds)
    beats = list(WorkerHeartbeat.objects.filter(seen_at__gte=fresh_after - timedelta(minutes=10))
                 .order_by("-seen_at")[:50])
    last = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    names = [b.name for b in beats]
    running: dict[str, list[str]] = {name: [] for name in names}
    for model in job_models():
        for worker_id, pk in model.objects.filter(status="running", worker_id__in=names).values_list("worker_id", "pk"):
            running[worker_id].append(f"{model._meta.label_lower}:{pk}")
    marks = _database_marks()
    instances = []
    for beat in beats:
        fresh = beat.seen_at >= fresh_after
        mark = marks.get(beat.name) or {}
        database_ok = fresh or bool(mark.get("database_ok"))
        if not fresh and mark and not mark.get("database_ok"):
            problem = mark.get("database_error") or "cannot reach the database"
        elif not fresh:
            problem = f"no heartbeat for {stale_seconds} s"
        elif beat.state != "running":
            problem = beat.broker_error or f"{beat.state}"
        else:
            problem = beat.broker_error
        up = fresh and beat.broker_ok and beat.state == "running"
        instances.append({
            "name": beat.name, "host": beat.host, "pid": beat.pid, "started_at": beat.started_at.isoformat(),
            "last_seen": beat.seen_at.isoformat(), "state": beat.state, "up": up, "broker_ok": fresh and beat.broker_ok,
            "database_ok": database_ok, "problem": problem,
            "running": sorted(running[beat.name]), "held": beat.held,
        })
    for name, mark in marks.items():  # beating in Redis only: its database writes fail
        if name not in running:
            instances.append({
                "name": name, "host": mark.get("host", ""), "pid": mark.get("pid"), "started_at": None,
                "last_seen": mark.get("seen_at"), "up": False, "broker_ok": True, "database_ok": False,
                "problem": mark.get("database_error") or "cannot reach the database", "running": [], "held": [],
            })
    working = [i for i in instances if i["up"]]
    return {
        # A worker that beats but cannot reach the broker takes no task: it does not count as up.
        "ok": bool(working),
        "live_processes": len(working),
        "last_seen": last.isoformat() if last else None,
        # One entry per worker cluster instance (`WORKER_ID`).
        "processes": instances,
    }
