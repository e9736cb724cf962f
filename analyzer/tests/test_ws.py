"""The session websocket: ownership, replay/resume, asking, stopping, refusals."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.storage import default_storage

from analyzer import services, tasks
from analyzer.models import AnalysisSession, Answer
from analyzer.tests.conftest import SAMPLE_CSV, create_session, upload_of
from config.asgi import application
from tests.support import api_token, token_ws_headers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def make_session(owner):
    return create_session(owner, "trades.csv", SAMPLE_CSV)


def token_for(user):
    return api_token(user)


def upload_only(owner, name="trades.csv", content=SAMPLE_CSV):
    """The upload request's part only: stored, processing job queued, nothing parsed."""
    return services.session_create_from_upload(owner=owner, upload=upload_of(name, content), auto_analyze=False)


async def connect(session_id, *, token=None, after=None, cookie_user=None, path=None):
    path = path or f"/ws/analyzer/sessions/{session_id}/"
    query = []
    if after is not None:
        query.append(f"after={after}")
    if query:
        path += "?" + "&".join(query)
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if token:
        headers += token_ws_headers(token)
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


# --- the upload processing job: chat locked until ready, progress streamed to the owner only ------------


async def receive_job_until_end(communicator, timeout: float = 15) -> list[dict]:
    seen = []
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        seen.append(message)
        if message["type"] == "end":
            return seen


async def test_chat_is_refused_until_the_file_is_processed(make_user):
    owner = await sync_to_async(make_user)("owner")
    session = await sync_to_async(upload_only)(owner)
    communicator, connected, _ = await connect(session.pk, token=await sync_to_async(token_for)(owner))
    assert connected
    for request in ({"type": "message", "text": "How many rows are there?"}, {"type": "auto_analyze"}):
        await communicator.send_json_to(request)
        refusal = await communicator.receive_json_from(timeout=5)
        assert refusal["event"] == "error" and refusal["seq"] is None
        assert "still being processed" in refusal["data"]["message"]
    assert not await sync_to_async(Answer.objects.filter(session_id=session.pk).exists)()
    await sync_to_async(tasks.processing_run)(session.processing.pk)  # the worker
    await communicator.send_json_to({"type": "message", "text": "How many rows are there?"})
    assert (await communicator.receive_json_from(timeout=5))["event"] == "user"
    await communicator.disconnect()


async def test_chat_is_refused_when_processing_failed(make_user):
    owner = await sync_to_async(make_user)("owner")
    session = await sync_to_async(upload_only)(owner, "header.csv", "a,b,c\n")
    await sync_to_async(tasks.processing_run)(session.processing.pk)
    communicator, connected, _ = await connect(session.pk, token=await sync_to_async(token_for)(owner))
    await communicator.send_json_to({"type": "message", "text": "How many rows are there?"})
    refusal = await communicator.receive_json_from(timeout=5)
    assert refusal["seq"] is None and "could not be processed" in refusal["data"]["message"]
    assert "no data rows" in refusal["data"]["message"]
    await communicator.disconnect()


async def test_processing_progress_streams_live_to_the_owner(make_user):
    owner = await sync_to_async(make_user)("owner")
    session = await sync_to_async(upload_only)(owner)
    job_id = session.processing.pk
    path = f"/ws/analyzer/processings/{job_id}/"
    communicator, connected, _ = await connect(session.pk, token=await sync_to_async(token_for)(owner), path=path)
    assert connected
    first = await communicator.receive_json_from(timeout=5)
    assert first["type"] == "status" and first["job"]["status"] == "queued" and first["job"]["id"] == job_id
    await sync_to_async(tasks.processing_run)(job_id)  # the worker
    messages = await receive_job_until_end(communicator)
    stages = [m["data"]["stage"] for m in messages if m["type"] == "event" and m["kind"] == "stage"]
    assert stages == ["sniff", "load", "profile", "save", "done"]
    final = [m for m in messages if m["type"] == "status"][-1]["job"]
    assert (final["status"], final["progress"], final["finished"]) == ("succeeded", 1.0, True)
    await communicator.disconnect()

    # Reconnecting after the 3rd event replays only the rest, then the end.
    communicator, connected, _ = await connect(session.pk, token=await sync_to_async(token_for)(owner), path=path,
                                               after=3)
    rest = await receive_job_until_end(communicator)
    assert [(m["seq"], m["kind"]) for m in rest if m["type"] == "event"] == [(4, "stage"), (5, "timings"), (6, "stage")]
    await communicator.disconnect()


async def test_failed_processing_streams_the_reason(make_user):
    owner = await sync_to_async(make_user)("owner")
    session = await sync_to_async(upload_only)(owner, "bad.csv", "a,b\n1,2,3\n4,5,6\n")
    await sync_to_async(tasks.processing_run)(session.processing.pk)
    communicator, connected, _ = await connect(session.pk, token=await sync_to_async(token_for)(owner),
                                               path=f"/ws/analyzer/processings/{session.processing.pk}/")
    messages = await receive_job_until_end(communicator)
    job = [m for m in messages if m["type"] == "status"][-1]["job"]
    assert job["status"] == "failed" and job["error"].startswith("Could not parse the CSV: all 2 rows were rejected")
    failed = [m for m in messages if m["type"] == "event"][-1]
    assert failed["data"]["stage"] == "failed" and failed["data"]["message"] == job["error"]
    await communicator.disconnect()


async def test_processing_stream_is_the_owners_only(make_user):
    owner = await sync_to_async(make_user)("owner")
    intruder = await sync_to_async(make_user)("intruder")
    staff = await sync_to_async(make_user)("staff", is_admin=True)
    session = await sync_to_async(upload_only)(owner)
    path = f"/ws/analyzer/processings/{session.processing.pk}/"
    _, connected, code = await connect(session.pk, path=path)
    assert not connected and code == 4401
    for other in (intruder, staff):  # a session is private, staff included
        _, connected, code = await connect(session.pk, token=await sync_to_async(token_for)(other), path=path)
        assert not connected and code == 4404
    communicator, connected, _ = await connect(session.pk, token=await sync_to_async(token_for)(owner), path=path)
    assert connected and (await communicator.receive_json_from(timeout=5))["job"]["status"] == "queued"
    await communicator.disconnect()
    # The owner may cancel through the stream; the session then ends failed (cancelled), with no files.
    communicator, connected, _ = await connect(session.pk, token=await sync_to_async(token_for)(owner), path=path)
    await communicator.receive_json_from(timeout=5)
    await communicator.send_json_to({"type": "cancel"})
    messages = await receive_job_until_end(communicator)
    assert [m for m in messages if m["type"] == "status"][-1]["job"]["status"] == "cancelled"
    await communicator.disconnect()
    fresh = await sync_to_async(AnalysisSession.objects.get)(pk=session.pk)
    assert await sync_to_async(services.session_status)(session=fresh) == "failed"
    assert fresh.original_name == "" and not await sync_to_async(default_storage.exists)(fresh.storage_dir)
