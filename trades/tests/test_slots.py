"""trades.slots: places in the queue come from one query, so the export lists don't grow with the queue."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import JobStatus
from trades import conf, services, slots, tasks
from trades.models import WAITING_MESSAGE, Export
from trades.params import ExportParams

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(monkeypatch):
    sent = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kw: sent.append((func, *args)) or "t")
    return sent


def park(user, count: int, *, first: int = 0) -> list[Export]:
    """`count` exports waiting for the one slot, which a running export holds."""
    parked = []
    for n in range(first, first + count):
        export = services.export_request(user=user, params=ExportParams(pricelow=float(n))).export
        tasks.export_run(export.pk)
        parked.append(Export.objects.get(pk=export.pk))
    assert all(e.is_waiting_for_slot for e in parked)
    return parked


def list_queries(client, api) -> tuple[int, int, int]:
    counts = []
    for get in (lambda: client.get(reverse("trades:export_list")), lambda: api.get("/api/trades/exports/"),
                lambda: client.get(reverse("trades:index"))):
        with CaptureQueriesContext(connection) as queries:
            assert get().status_code == 200
        counts.append(len(queries))
    return tuple(counts)


def test_export_lists_do_not_query_per_waiting_export(trades_data, client, auth_client, user, monkeypatch, broker):
    monkeypatch.setattr(conf, "EXPORT_CONCURRENCY", 1)
    holder = services.export_request(user=user, params=ExportParams(exchanges=(10,))).export
    Export.objects.filter(pk=holder.pk).update(status=JobStatus.RUNNING, slot=0)
    client.force_login(user)
    api = auth_client(user)
    park(user, 1)
    list_queries(client, api)  # warm: the first API request also writes the token's last-used time
    with_one = list_queries(client, api)
    parked = park(user, 4, first=1)
    assert list_queries(client, api) == with_one  # five waiting now, the same number of queries
    body = api.get("/api/trades/exports/").json()
    positions = {row["id"]: (row["queue_position"], row["message"]) for row in body["results"]}
    for place, export in enumerate(parked, start=2):
        assert positions[export.pk] == (place, f"{WAITING_MESSAGE} (position {place})")
    assert positions[holder.pk][0] is None


def test_queue_positions_is_one_query_and_matches_the_count(trades_data, user, monkeypatch, broker):
    monkeypatch.setattr(conf, "EXPORT_CONCURRENCY", 1)
    holder = services.export_request(user=user, params=ExportParams(exchanges=(10,))).export
    Export.objects.filter(pk=holder.pk).update(status=JobStatus.RUNNING, slot=0)
    parked = park(user, 3)
    services.export_cancel(export=parked[0], by=user)
    with CaptureQueriesContext(connection) as queries:
        positions = slots.queue_positions(pks=[e.pk for e in parked] + [holder.pk])
    assert len(queries) == 1
    assert positions == {parked[1].pk: 1, parked[2].pk: 2}
    for export in parked[1:]:
        assert Export.objects.get(pk=export.pk).queue_position == positions[export.pk]  # the single-row count


def test_export_list_api_is_paged_like_every_list(trades_data, user, auth_client, broker):
    api = auth_client(user)
    for n in range(3):
        services.export_request(user=user, params=ExportParams(exchanges=(10,), pricelow=float(n)))
    first = api.get("/api/trades/exports/", {"page_size": 2}).json()
    assert first["count"] == 3 and len(first["results"]) == 2 and first["next"]
    second = api.get("/api/trades/exports/", {"page_size": 2, "page": 2}).json()
    assert len(second["results"]) == 1 and second["previous"]
    ids = [e["id"] for e in first["results"] + second["results"]]
    assert ids == sorted(ids, reverse=True)
    assert api.get("/api/trades/exports/", {"page_size": 0}).status_code == 400
    assert api.get("/api/trades/exports/", {"page": 9}).status_code == 404
