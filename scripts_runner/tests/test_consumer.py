"""The live-log websocket: replay, resume after a seq, ownership."""

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from tests.support import api_token, token_ws_headers
from core import services as core_services
from scripts_runner import services
from scripts_runner.runner import LogWriter

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def finished_run(user):
    services.script_access_set(user=user, run=True)
    script = services.script_create(owner=user, name="s.py", code=b"print(1)\n")
    run = services.script_run_create(script=script, user=user)
    core_services.job_start(job=run)
    writer = LogWriter(run)
    writer.write([("stdout", ["a", "b"])], output_bytes=4, truncated=False)
    writer.write([("stderr", ["c"])], output_bytes=6, truncated=False)
    writer.write([("stdout", ["d"])], output_bytes=8, truncated=False)
    core_services.job_succeed(job=run, message="done", exit_code=0, end_reason="exited")
    return run


async def _read_all(communicator):
    messages = []
    while True:
        message = await communicator.receive_json_from(timeout=5)
        messages.append(message)
        if message["type"] == "end":
            return messages


def _connect(path, token):
    return WebsocketCommunicator(application, path, headers=token_ws_headers(token))


def test_replay_then_resume_after_seq(user, finished_run):
    token = api_token(user)

    async def scenario():
        communicator = _connect(f"/ws/scripts/runs/{finished_run.pk}/", token)
        connected, _ = await communicator.connect()
        assert connected
        messages = await _read_all(communicator)
        await communicator.disconnect()
        resumed = _connect(f"/ws/scripts/runs/{finished_run.pk}/?after=2", token)
        assert (await resumed.connect())[0]
        later = await _read_all(resumed)
        await resumed.disconnect()
        return messages, later

    import asyncio

    messages, later = asyncio.run(scenario())
    events = [m for m in messages if m["type"] == "event"]
    assert [(e["seq"], e["data"]["stream"], e["data"]["lines"], e["data"]["first_line"]) for e in events] == [
        (1, "stdout", ["a", "b"], 1), (2, "stderr", ["c"], 3), (3, "stdout", ["d"], 4),
    ]
    status = [m for m in messages if m["type"] == "status"][-1]["job"]
    assert status["status"] == "succeeded" and status["exit_code"] == 0 and status["end_reason"] == "exited"
    assert [m["seq"] for m in later if m["type"] == "event"] == [3]


@pytest.mark.parametrize("who, code", [("other", 4404), ("anonymous", 4401)])
def test_other_user_is_refused(user, other_user, finished_run, who, code):
    import asyncio

    token = api_token(other_user) if who == "other" else "nope"

    async def scenario():
        communicator = _connect(f"/ws/scripts/runs/{finished_run.pk}/", token)
        connected, close_code = await communicator.connect()
        return connected, close_code

    connected, close_code = asyncio.run(scenario())
    assert not connected and close_code == code


def test_unknown_run_is_not_found(user):
    import asyncio

    token = api_token(user)

    async def scenario():
        return await _connect("/ws/scripts/runs/999999/", token).connect()

    assert asyncio.run(scenario()) == (False, 4404)


def test_owner_can_cancel_over_the_websocket(user, other_user):
    import asyncio

    from scripts_runner.models import ScriptRun

    services.script_access_set(user=user, run=True)
    script = services.script_create(owner=user, name="w.py", code=b"print(1)\n")
    run = services.script_run_create(script=script, user=user)
    core_services.job_start(job=run)
    token = api_token(user)

    async def scenario():
        communicator = _connect(f"/ws/scripts/runs/{run.pk}/", token)
        assert (await communicator.connect())[0]
        await communicator.receive_json_from(timeout=5)  # first status
        await communicator.send_json_to({"type": "cancel"})
        await asyncio.sleep(0.5)
        await communicator.disconnect()

    asyncio.run(scenario())
    run = ScriptRun.objects.get(pk=run.pk)
    assert run.cancel_requested and run.cancelled_by == user
