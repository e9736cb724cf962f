"""The session websocket: ownership, replay/resume, asking, stopping, refusals."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.authtoken.models import Token

from analyzer import services, tasks
from analyzer.models import AnalysisSession, Answer
from analyzer.tests.conftest import SAMPLE_CSV, upload_of
from config.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def make_session(owner):
    return services.session_create_from_upload(owner=owner, upload=upload_of("trades.csv", SAMPLE_CSV),
                                               auto_analyze=False)


def token_for(user):
    return Token.objects.get_or_create(user=user)[0].key


async def connect(session_id, *, token=None, after=None, cookie_user=None):
    path = f"/ws/analyzer/sessions/{session_id}/"
    query = []
    if token:
        query.append(f"token={token}")
    if after is not None:
        query.append(f"after={after}")
    if query:
        path += "?" + "&".join(query)
    headers = [(b"origin", b"http://127.0.0.1")]
    if cookie_user is not None:
        from django.test import Client

        client = Client()
        await sync_to_async(client.force_login)(cookie_user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def receive_until(communicator, event: str, timeout: float = 10) -> list[dict]:
    seen = []
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        seen.append(message)
        if message["event"] == event:
            return seen


async def test_unauthenticated_is_refused(make_user):
    owner = await sync_to_async(make_user)("owner")
    session = await sync_to_async(make_session)(owner)
    communicator, connected, code = await connect(session.pk)
    assert not connected and code == 4401


async def test_other_users_session_is_invisible(make_user):
    owner = await sync_to_async(make_user)("owner")
    intruder = await sync_to_async(make_user)("intruder")
    session = await sync_to_async(make_session)(owner)
    communicator, connected, code = await connect(session.pk, token=await sync_to_async(token_for)(intruder))
    assert not connected and code == 4404
    missing, connected, code = await connect(999999, token=await sync_to_async(token_for)(owner))
    assert not connected and code == 4404


async def test_replay_and_resume_after_seq(make_user):
    owner = await sync_to_async(make_user)("owner")
    session = await sync_to_async(make_session)(owner)
    for i in range(3):
        await sync_to_async(services.message_add)(session=session, kind="text", data={"text": f"line {i}"})
    token = await sync_to_async(token_for)(owner)
    communicator, connected, _ = await connect(session.pk, token=token)
    assert connected
    replay = [await communicator.receive_json_from(timeout=5) for _ in range(3)]
    assert [m["seq"] for m in replay] == [1, 2, 3]
    assert [m["data"]["text"] for m in replay] == ["line 0", "line 1", "line 2"]
    await communicator.disconnect()

    # Two more happen while the client is away; it reconnects with ?after=3 and gets only those.
    for i in range(3, 5):
        await sync_to_async(services.message_add)(session=session, kind="text", data={"text": f"line {i}"})
    communicator, connected, _ = await connect(session.pk, token=token, after=3)
    missed = [await communicator.receive_json_from(timeout=5) for _ in range(2)]
    assert [m["seq"] for m in missed] == [4, 5]
    assert await communicator.receive_nothing(timeout=0.6)
    # New events arrive live.
    await sync_to_async(services.message_add)(session=session, kind="text", data={"text": "live"})
    live = await communicator.receive_json_from(timeout=5)
    assert live["seq"] == 6 and live["data"]["text"] == "live"
    await communicator.disconnect()


async def test_ask_over_websocket_streams_the_answer(make_user):
    owner = await sync_to_async(make_user)("owner")
    session = await sync_to_async(make_session)(owner)
    communicator, connected, _ = await connect(session.pk, cookie_user=owner)
    assert connected
    await communicator.send_json_to({"type": "message", "text": "sum of qty by symbol"})
    first = await communicator.receive_json_from(timeout=5)
    assert first["event"] == "user" and first["data"]["text"] == "sum of qty by symbol"
    answer = await sync_to_async(Answer.objects.get)(session=session)
    assert answer.status == "queued"
    # The worker's part, run here through the real task function.
    await sync_to_async(tasks.answer_run)(answer.pk)
    events = await receive_until(communicator, "done")
    names = [e["event"] for e in events]
    assert names[0] == "status" and "query_result" in names and "plot" in names and "text" in names
    assert "session_update" in names and names[-1] == "done"
    assert events[-1]["data"]["status"] == "succeeded"
    await communicator.disconnect()


async def test_stop_a_queued_answer_ends_with_done(make_user):
    owner = await sync_to_async(make_user)("owner")
    session = await sync_to_async(make_session)(owner)
    communicator, connected, _ = await connect(session.pk, token=await sync_to_async(token_for)(owner))
    await communicator.send_json_to({"type": "message", "text": "How many rows are there?"})
    assert (await communicator.receive_json_from(timeout=5))["event"] == "user"
    await communicator.send_json_to({"type": "stop"})
    events = await receive_until(communicator, "done")
    assert events[-1]["data"]["status"] == "cancelled"
    answer = await sync_to_async(Answer.objects.get)(session=session)
    assert answer.status == "cancelled"
    # The worker picking it up later does nothing.
    await sync_to_async(tasks.answer_run)(answer.pk)
    assert await communicator.receive_nothing(timeout=0.6)
    await communicator.disconnect()


async def test_refusals_are_sent_to_the_client_only(make_user):
    owner = await sync_to_async(make_user)("owner")
    session = await sync_to_async(make_session)(owner)
    communicator, connected, _ = await connect(session.pk, token=await sync_to_async(token_for)(owner))
    await communicator.send_json_to({"type": "dance"})
    refusal = await communicator.receive_json_from(timeout=5)
    assert refusal["event"] == "error" and refusal["seq"] is None and "Unknown message type" in refusal["data"]["message"]
    await communicator.send_json_to({"type": "message", "text": "  "})
    assert "Type a question" in (await communicator.receive_json_from(timeout=5))["data"]["message"]
    await communicator.send_json_to({"type": "message", "text": 42})
    assert "must be a string" in (await communicator.receive_json_from(timeout=5))["data"]["message"]
    await communicator.send_to(text_data="not json")
    assert "JSON" in (await communicator.receive_json_from(timeout=5))["data"]["message"]
    await communicator.send_json_to({"type": "message", "text": "How many rows are there?"})
    assert (await communicator.receive_json_from(timeout=5))["event"] == "user"
    await communicator.send_json_to({"type": "message", "text": "and again"})
    busy = await communicator.receive_json_from(timeout=5)
    assert busy["seq"] is None and "still running" in busy["data"]["message"]
    await communicator.disconnect()


async def test_deleting_the_session_closes_the_socket(make_user):
    owner = await sync_to_async(make_user)("owner")
    session = await sync_to_async(make_session)(owner)
    communicator, connected, _ = await connect(session.pk, token=await sync_to_async(token_for)(owner))
    assert connected
    await sync_to_async(services.session_delete)(session=session)
    output = await communicator.receive_output(timeout=5)
    assert output["type"] == "websocket.close" and output["code"] == 4404
    assert not await sync_to_async(AnalysisSession.objects.exists)()
