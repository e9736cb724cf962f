"""An API client against the real server and worker: upload by token (202 + processing job), follow the processing,
watch the answer stream, reconnect and resume."""

import asyncio
import json
import time

import httpx
import pytest
import websockets

from analyzer.models import Message
from tests.support import api_token, token_header, token_subprotocols

pytestmark = pytest.mark.e2e

CSV = "date,symbol,qty,price\n" + "".join(
    f"2024-0{1 + i % 3}-{1 + i % 28:02d},{['AAPL', 'MSFT', 'GOOG'][i % 3]},{i % 17},{100 + i % 50}\n" for i in range(500)
)


async def events_until_done(ws, *, stop_after: str | None = None, timeout: float = 60) -> list[dict]:
    seen = []
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=timeout))
        seen.append(message)
        if message["event"] == "done" or message["event"] == stop_after:
            return seen


def test_upload_stream_reconnect_resume(live_platform, user, report):
    token = api_token(user)
    headers = {"Authorization": f"Token {token}"}
    started = time.monotonic()
    response = httpx.post(f"{live_platform.url}/api/analyzer/upload/", headers=headers,
                          files={"file": ("trades.csv", CSV.encode(), "text/csv")}, timeout=60)
    upload_seconds = time.monotonic() - started
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "processing" and body["processing"]["status"] in ("queued", "running")
    session_id = body["session_id"]
    # The subprotocol way (clients that cannot set headers); the server answers platform.v1, not the token.
    ws_url = f"{live_platform.ws_url}/ws/analyzer/sessions/{session_id}/?"
    processing_url = f"{live_platform.ws_url}{body['processing']['websocket']}"
    protocols = token_subprotocols(token)

    async def follow_processing():
        messages = []
        async with websockets.connect(processing_url, open_timeout=10, subprotocols=protocols) as ws:
            assert ws.subprotocol == "platform.v1"
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
                messages.append(message)
                if message["type"] == "end":
                    return messages

    async def scenario():
        # The auto-analysis started with the upload; read part of it, drop the connection…
        async with websockets.connect(ws_url, open_timeout=10, subprotocols=protocols) as ws:
            first = await events_until_done(ws, stop_after="plot")
        last_seq = first[-1]["seq"]
        # …and reconnect: only what was missed comes, in order, up to `done`.
        async with websockets.connect(f"{ws_url}after={last_seq}", open_timeout=10, subprotocols=protocols) as ws:
            rest = await events_until_done(ws)
            sent = time.monotonic()
            await ws.send(json.dumps({"type": "message", "text": "average price by symbol"}))
            answer = await events_until_done(ws)
            elapsed = time.monotonic() - sent
        return first, rest, answer, elapsed

    processing = asyncio.run(follow_processing())
    final = [m for m in processing if m["type"] == "status"][-1]["job"]
    assert final["status"] == "succeeded", (final, live_platform.output())
    assert [m["data"]["stage"] for m in processing if m["type"] == "event" and m["kind"] == "stage"][-1] == "done"
    report(f"analyzer: upload request answered in {upload_seconds * 1000:.0f} ms (202, processing queued)")
    first, rest, answer, elapsed = asyncio.run(scenario())
    report(f"analyzer: question → done over the websocket (real server + worker, built-in analyst, 500 rows): "
           f"{elapsed * 1000:.0f} ms")
    seqs = [m["seq"] for m in first + rest]
    assert seqs == list(range(1, len(seqs) + 1)), live_platform.output()
    assert rest[-1]["event"] == "done" and rest[-1]["data"]["status"] == "succeeded"
    assert sum(1 for m in first + rest if m["event"] == "plot") == 3
    assert answer[0]["event"] == "user" and answer[-1]["event"] == "done"
    assert answer[-1]["data"]["analyst"] == "builtin" and answer[-1]["data"]["analyst_label"] == "Built-in analyst"
    result = next(m for m in answer if m["event"] == "query_result")
    assert {r["symbol"] for r in result["data"]["result"]} == {"AAPL", "MSFT", "GOOG"}
    assert any(m["event"] == "session_update" for m in answer)

    detail = httpx.get(f"{live_platform.url}/api/analyzer/sessions/{session_id}/", headers=headers).json()
    assert [m["seq"] for m in detail["messages"]] == list(range(1, Message.objects.filter(
        session_id=session_id).count() + 1))
    assert detail["running"] is False


def test_websocket_refuses_other_users(live_platform, user, other_user):
    token = api_token(user)
    response = httpx.post(f"{live_platform.url}/api/analyzer/upload/", headers={"Authorization": f"Token {token}"},
                          files={"file": ("t.csv", CSV.encode(), "text/csv")}, data={"auto_analyze": "false"})
    session_id = response.json()["session_id"]
    processing_id = response.json()["processing"]["id"]
    intruder = api_token(other_user)

    async def attempt(path=f"/ws/analyzer/sessions/{session_id}/"):
        url = f"{live_platform.ws_url}{path}"
        try:
            async with websockets.connect(url, open_timeout=10, additional_headers=token_header(intruder)) as ws:
                await asyncio.wait_for(ws.recv(), timeout=5)
        except websockets.exceptions.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None
        except websockets.exceptions.InvalidStatus as exc:
            return exc.response.status_code
        return "open"

    assert asyncio.run(attempt()) in (4404, 403)
    # The processing stream of the session is the owner's only too.
    assert asyncio.run(attempt(f"/ws/analyzer/processings/{processing_id}/")) in (4404, 403)
    assert httpx.get(f"{live_platform.url}/api/analyzer/sessions/{session_id}/",
                     headers={"Authorization": f"Token {intruder}"}).status_code == 404
