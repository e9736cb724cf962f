"""No GET starts a job: walking every page and API route with GET (as root) creates no job and queues no task.

A link or an <img> on another site can make a signed-in browser send a GET; only POST (with CSRF) changes things.
"""

import re

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

from core.models import Job

pytestmark = pytest.mark.django_db

SKIP_PREFIXES = ("admin/", "accounts/", "api/schema", "api/docs", "static/", "media/")
QUERIES = ["", "?year=2025", "?branch=B01&pos=1&start=2025-03-01&end=2025-03-31&export=1&format=csv"]


def _routes(resolver=None, prefix=""):
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern, route)
        elif isinstance(pattern, URLPattern):
            yield route


def _concrete(route: str) -> str:
    path = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "1" if m.group(1) == "int" else "x", route)
    return "/" + path.replace("^", "").replace("$", "")


def _job_models():
    return [m for m in apps.get_models() if issubclass(m, Job)]


def _counts():
    from django_q.models import OrmQ, Schedule, Task

    counts = {m._meta.label: m.objects.count() for m in _job_models()}
    counts.update({"django_q.OrmQ": OrmQ.objects.count(), "django_q.Task": Task.objects.count(),
                   "django_q.Schedule": Schedule.objects.count()})
    return counts


def test_no_get_route_creates_a_job_or_queues_a_task(client, root_user, monkeypatch):
    from django_q import tasks as q_tasks

    queued = []
    monkeypatch.setattr(q_tasks, "async_task", lambda *a, **kw: queued.append(a))
    assert len(_job_models()) >= 5  # trades, scripts, etl, analyzer, backtest jobs
    client.force_login(root_user)
    before = _counts()
    paths = sorted({_concrete(r) for r in _routes() if not r.startswith(SKIP_PREFIXES)})
    assert "/api/etl/records/export/" in paths and "/etl/records/" in paths
    for path in paths:
        for query in QUERIES:
            response = client.get(path + query)
            # /api/health/ says 503 when no worker runs (none does here).
            assert response.status_code < 500 or path == "/api/health/", (path + query, response.status_code)
    assert client.get("/api/etl/records/export/?year=2025").status_code == 405
    assert _counts() == before
    assert queued == []
