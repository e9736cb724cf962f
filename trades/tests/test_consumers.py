"""The export stream: owner (and staff) get status with rows and a download link; others are refused."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from tests.support import api_token, token_ws_headers
from trades import tasks
from trades.params import ExportParams
from trades.services import export_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _session(path, user, *, cancel=False):
    token = await sync_to_async(api_token)(user)
    communicator = WebsocketCommunicator(application, path, headers=token_ws_headers(token))
    connected, code = await communicator.connect(timeout=5)
    messages = []
    if connected:
        if cancel:
            await communicator.send_json_to({"type": "cancel"})
        while True:
            message = await communicator.receive_json_from(timeout=5)
            messages.append(message)
            if message["type"] == "end":
                break
        await communicator.disconnect()
    return connected, code, messages


def _new_export(user, exchange):
    return export_request(user=user, params=ExportParams(exchanges=(exchange,))).export


async def test_owner_sees_rows_and_download(trades_data, user):
    export = await sync_to_async(_new_export)(user, 12)
    await sync_to_async(tasks.export_run)(export.pk)
    connected, _code, messages = await _session(f"/ws/trades/exports/{export.pk}/", user)
    assert connected
    status = [m for m in messages if m["type"] == "status"][-1]["job"]
    assert status["status"] == "succeeded" and status["rows_written"] > 0
    assert status["download_url"] == f"/trades/exports/{export.pk}/download/"


async def test_other_user_is_refused_and_staff_allowed(trades_data, user, other_user, admin_user):
    export = await sync_to_async(_new_export)(user, 12)
    connected, code, _ = await _session(f"/ws/trades/exports/{export.pk}/", other_user)
    assert not connected and code == 4404
    await sync_to_async(tasks.export_run)(export.pk)
    assert (await _session(f"/ws/trades/exports/{export.pk}/", admin_user))[0]


async def test_cancel_over_the_socket(trades_data, user):
    export = await sync_to_async(_new_export)(user, 10)
    connected, _code, messages = await _session(f"/ws/trades/exports/{export.pk}/", user, cancel=True)
    assert connected
    assert [m for m in messages if m["type"] == "status"][-1]["job"]["status"] == "cancelled"
