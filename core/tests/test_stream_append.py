"""The one append-and-ring helper: consecutive sequence numbers per stream, whatever the table, and the
doorbell only after the commit."""

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from analyzer.models import Message
from core import services
from core.models import JobEvent, WorkerCheck

pytestmark = pytest.mark.django_db


async def _receive(layer, channel: str) -> list[dict]:
    messages = []
    while True:
        try:
            messages.append(await asyncio.wait_for(layer.receive(channel), timeout=0.2))
        except asyncio.TimeoutError:
            return messages


def test_numbers_follow_on_across_writes_and_the_bell_rings_after_commit(make_user,
                                                                         django_capture_on_commit_callbacks):
    job = services.worker_check_create(user=make_user("owner", is_admin=True))
    callbacks = []

    def write():
        with django_capture_on_commit_callbacks(execute=False) as captured:
            services.job_events_add(job=job, events=[("a", {}), ("b", {})])
            services.job_event_add(job=job, kind="c", data={"n": 3})
        callbacks.extend(captured)

    def commit():
        for callback in callbacks:
            callback()

    async def scenario():
        layer = get_channel_layer()  # one event loop for the whole exchange (the Redis layer needs it)
        channel = await layer.new_channel()
        await layer.group_add(services.stream_group(kind="core.workercheck", pk=job.pk), channel)
        await sync_to_async(write)()
        before = await _receive(layer, channel)
        await sync_to_async(commit)()
        return before, await _receive(layer, channel)

    before, after = async_to_sync(scenario)()
    assert before == []  # nothing rung before the commit
    assert [m["type"] for m in after] == ["doorbell", "doorbell"]
    assert list(JobEvent.objects.filter(job_id=job.pk).order_by("seq").values_list("seq", "kind")) == [
        (1, "a"), (2, "b"), (3, "c")]
    job.refresh_from_db()
    assert job.event_seq == 3


def test_a_chat_message_takes_the_sessions_next_number(make_user):
    from analyzer import services as analyzer_services
    from analyzer.tests.conftest import SAMPLE_CSV, create_session

    session = create_session(make_user("owner"), "t.csv", SAMPLE_CSV)
    before = session.event_seq
    first = analyzer_services.message_add(session=session, kind=Message.Kind.TEXT, data={"text": "one"})
    second = analyzer_services.message_add(session=session, kind=Message.Kind.TEXT, data={"text": "two"})
    assert (first.seq, second.seq) == (before + 1, before + 2) and first.pk and second.pk
    assert session.event_seq == before + 2
    assert list(Message.objects.filter(session=session, seq__gt=before).values_list("seq", flat=True)) == [
        before + 1, before + 2]


def test_an_owner_row_that_is_gone_writes_nothing(make_user):
    job = services.worker_check_create(user=make_user("owner", is_admin=True))
    WorkerCheck.objects.filter(pk=job.pk).delete()
    with pytest.raises(WorkerCheck.DoesNotExist):
        services.job_event_add(job=job, kind="late", data={})
    assert not JobEvent.objects.filter(job_id=job.pk).exists()
