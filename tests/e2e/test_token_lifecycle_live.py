"""Against real server processes: a password change closes an open websocket in another process and
the old token gets 401; no token ever reaches the access log or Django's request log."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import httpx
import pytest
import websockets

from conftest import BASE_DIR, _wait_http
from tests.support import PASSWORD, api_token, free_port, token_header, token_subprotocols

pytestmark = pytest.mark.e2e


def test_password_change_closes_a_live_websocket_and_ends_the_token(live_platform, user, root_user):
    """The web process learns of the change made here (another process) by its per-poll check,
    and, with Redis, at once from the close message."""
    from core.models import WorkerCheck

    job = WorkerCheck.objects.create(owner=user)
    key = api_token(user)
    root_key = api_token(root_user)
    url = f"{live_platform.ws_url}/ws/core/worker-checks/{job.pk}/"

    async def scenario():
        async with websockets.connect(url, open_timeout=10, additional_headers=token_header(key)) as ws:
            first = json_of(await asyncio.wait_for(ws.recv(), timeout=10))
            assert first["type"] == "status"
            async with httpx.AsyncClient(base_url=live_platform.url, timeout=10) as client:
                changed = await client.post(f"/api/users/{user.pk}/password/", headers=token_header(root_key),
                                            json={"new_password": "Fresh-password-83"})
                assert changed.status_code == 204, changed.text
                with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), timeout=15)
                assert closed.value.rcvd.code == 4401
                old = await client.get("/api/auth/tokens/", headers=token_header(key))
                assert old.status_code == 401
        # A new websocket with the old token is refused too (closed before accept: HTTP 403 at the handshake).
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with websockets.connect(url, open_timeout=10, additional_headers=token_header(key)):
                pass
        assert refused.value.response.status_code == 403

    asyncio.run(scenario())


def json_of(text):
    import json

    return json.loads(text)


@pytest.fixture
def logging_server(live_platform, tmp_path):
    """A second web process on the same database with uvicorn's access log and Django's logs on."""
    port = free_port()
    log_path = tmp_path / "web-access.log"
    env = dict(live_platform.env, LOG_LEVEL="DEBUG")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
             "--ws", "websockets", "--lifespan", "off", "--log-level", "debug", "--access-log"],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}/accounts/login/", 60, [proc])
        yield f"127.0.0.1:{port}", log_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_no_token_in_the_access_log(logging_server, user):
    from core.models import WorkerCheck

    address, log_path = logging_server
    base, ws_base = f"http://{address}", f"ws://{address}"
    job = WorkerCheck.objects.create(owner=user)
    ws_path = f"/ws/core/worker-checks/{job.pk}/"
    keys = []

    async def scenario():
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            login = await client.post("/api/auth/token/", json={"username": "alice", "password": PASSWORD})
            assert login.status_code == 200
            key = login.json()["token"]
            keys.append(key)
            assert (await client.get("/api/auth/tokens/", headers={"Authorization": f"Bearer {key}"})).status_code == 200
            created = await client.post("/api/auth/tokens/", headers=token_header(key), json={"name": "logged?"})
            keys.append(created.json()["token"])
            # A client that still puts the key in the URL: refused, and redacted in the log.
            assert (await client.get(f"/api/auth/tokens/?token={key}")).status_code == 401
            assert (await client.get("/api/auth/tokens/", headers=token_header(key + "0"))).status_code == 401
        async with websockets.connect(base.replace("http", "ws") + ws_path, additional_headers=token_header(key)) as ws:
            assert json_of(await asyncio.wait_for(ws.recv(), timeout=10))["type"] == "status"
        async with websockets.connect(ws_base + ws_path, subprotocols=token_subprotocols(keys[1])) as ws:
            assert ws.subprotocol == "platform.v1"
            assert json_of(await asyncio.wait_for(ws.recv(), timeout=10))["type"] == "status"
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(f"{ws_base}{ws_path}?after=0&token={key}"):
                pass

    asyncio.run(scenario())

    def logged():
        text = log_path.read_text(errors="replace")
        return text if "WebSocket" in text and "/api/auth/tokens/" in text and "token=[redacted]" in text else ""

    from tests.support import wait_until

    text = wait_until(logged, timeout=20, message="the requests in the access log")
    assert '"POST /api/auth/token/ HTTP/1.1" 200' in text
    assert "Unauthorized: /api/auth/tokens/" in text  # Django's request log is on too
    for key in keys:
        assert key not in text and key[:15] not in text
