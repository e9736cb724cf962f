"""Websocket authentication without the token in the URL, the origin check (scheme, host, port),
and websockets ending with the user's power (password change, revoked token, logout)."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts import services as account_services
from config.asgi import application
from core import services
from core.models import WorkerCheck
from tests.support import api_token, token_subprotocols, token_ws_headers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

HOST = [(b"host", b"127.0.0.1:8000")]
SAME_ORIGIN = [(b"origin", b"http://127.0.0.1:8000")]


def _job_path(job) -> str:
    return f"/ws/core/worker-checks/{job.pk}/"


async def _owner_and_job(make_user):
    owner = await sync_to_async(make_user)("owner")
    job = await sync_to_async(WorkerCheck.objects.create)(owner=owner)
    return owner, job


async def _session_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    await sync_to_async(client.force_login)(user)
    return b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()


async def _open(path, *, headers=(), subprotocols=None):
    communicator = WebsocketCommunicator(application, path, headers=list(headers), subprotocols=subprotocols)
    connected, detail = await communicator.connect(timeout=5)
    return communicator, connected, detail


async def _closed_with(communicator, timeout: float = 10) -> int:
    """Read until the server closes; returns the close code."""
    while True:
        message = await communicator.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            return message.get("code")


# --- how clients authenticate --------------------------------------------------------------------


async def test_token_in_the_authorization_header(make_user):
    owner, job = await _owner_and_job(make_user)
    key = await sync_to_async(api_token)(owner)
    for scheme in ("Token", "Bearer"):
        comm, connected, _ = await _open(_job_path(job), headers=[(b"authorization", f"{scheme} {key}".encode())])
        assert connected, scheme
        assert (await comm.receive_json_from(timeout=5))["type"] == "status"
        await comm.disconnect()


async def test_token_in_the_subprotocol_is_answered_with_the_protocol_name_only(make_user):
    owner, job = await _owner_and_job(make_user)
    key = await sync_to_async(api_token)(owner)
    comm, connected, subprotocol = await _open(_job_path(job), subprotocols=token_subprotocols(key))
    assert connected and subprotocol == "platform.v1"
    assert key not in subprotocol
    assert (await comm.receive_json_from(timeout=5))["type"] == "status"
    await comm.disconnect()


async def test_token_in_the_url_is_not_accepted(make_user):
    owner, job = await _owner_and_job(make_user)
    key = await sync_to_async(api_token)(owner)
    _, connected, code = await _open(f"{_job_path(job)}?token={key}")
    assert not connected and code == 4401


@pytest.mark.parametrize("headers, subprotocols", [
    ([(b"authorization", b"Token not-a-key")], None),
    ([(b"authorization", b"Basic dXNlcjpwYXNz")], None),
    ([(b"authorization", b"Token")], None),
    ([], ["platform.v1", "token."]),
    ([], ["platform.v1", "token.deadbeef"]),
])
async def test_bad_tokens_are_refused_and_never_fall_back_to_the_cookie(make_user, headers, subprotocols):
    owner, job = await _owner_and_job(make_user)
    cookie = await _session_cookie(owner)
    _, connected, code = await _open(_job_path(job), headers=headers + [cookie] + HOST + SAME_ORIGIN,
                                     subprotocols=subprotocols)
    assert not connected and code == 4401


async def test_session_cookie_needs_the_browsers_origin(make_user):
    owner, job = await _owner_and_job(make_user)
    cookie = await _session_cookie(owner)
    comm, connected, _ = await _open(_job_path(job), headers=[cookie] + HOST + SAME_ORIGIN)
    assert connected
    await comm.disconnect()
    # No Origin means no browser: the cookie is not used, a token is required.
    _, connected, code = await _open(_job_path(job), headers=[cookie] + HOST)
    assert not connected and code == 4401


# --- the origin check ----------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [
    b"http://127.0.0.1:9999",        # wrong port
    b"http://localhost:9999",         # wrong host and port (the old check let this pass)
    b"http://localhost:8000",         # wrong host
    b"https://127.0.0.1:8000",        # wrong scheme
    b"http://127.0.0.1",              # default port 80, not 8000
    b"http://evil.example:8000",
    b"null",
    b"http://127.0.0.1:8000/path",
    b"\xff\xfe",
])
async def test_foreign_origins_are_refused_even_with_a_token(make_user, origin):
    owner, job = await _owner_and_job(make_user)
    key = await sync_to_async(api_token)(owner)
    cookie = await _session_cookie(owner)
    _, connected, _ = await _open(_job_path(job), headers=[(b"origin", origin), cookie] + HOST)
    assert not connected
    _, connected, _ = await _open(_job_path(job), headers=[(b"origin", origin)] + HOST + token_ws_headers(key))
    assert not connected


async def test_origin_of_a_host_not_allowed_is_refused(make_user, settings):
    owner, job = await _owner_and_job(make_user)
    cookie = await _session_cookie(owner)
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["data.example.com"]
    # DNS rebinding: the page's own origin, but a host name the platform does not serve.
    headers = [(b"origin", b"http://rebind.example:8000"), (b"host", b"rebind.example:8000"), cookie]
    _, connected, _ = await _open(_job_path(job), headers=headers)
    assert not connected
    headers = [(b"origin", b"http://data.example.com"), (b"host", b"data.example.com"), cookie]
    comm, connected, _ = await _open(_job_path(job), headers=headers)
    assert connected
    await comm.disconnect()


async def test_secure_origin_behind_a_proxy_and_trusted_origins(make_user, settings):
    owner, job = await _owner_and_job(make_user)
    cookie = await _session_cookie(owner)
    settings.ALLOWED_HOSTS = ["data.example.com"]
    comm = WebsocketCommunicator(application, _job_path(job), headers=[
        (b"origin", b"https://data.example.com"), (b"host", b"data.example.com"), cookie])
    comm.scope["scheme"] = "wss"  # uvicorn --proxy-headers with X-Forwarded-Proto: https
    connected, _ = await comm.connect(timeout=5)
    assert connected
    await comm.disconnect()
    # The same request over plain ws:// (scheme differs from the page's) is refused...
    _, connected, _ = await _open(_job_path(job), headers=[
        (b"origin", b"https://data.example.com"), (b"host", b"data.example.com"), cookie])
    assert not connected
    # ...unless that origin is trusted explicitly.
    settings.CSRF_TRUSTED_ORIGINS = ["https://data.example.com"]
    comm, connected, _ = await _open(_job_path(job), headers=[
        (b"origin", b"https://data.example.com"), (b"host", b"data.example.com"), cookie])
    assert connected
    await comm.disconnect()


# --- websockets end with the credentials ---------------------------------------------------------


async def test_password_change_closes_token_and_session_websockets(make_user, admin_user):
    owner, job = await _owner_and_job(make_user)
    key = await sync_to_async(api_token)(owner)
    by_token, connected, _ = await _open(_job_path(job), headers=token_ws_headers(key))
    assert connected
    by_session, connected, _ = await _open(_job_path(job), headers=[await _session_cookie(owner)] + HOST + SAME_ORIGIN)
    assert connected
    await sync_to_async(account_services.user_set_password)(actor=admin_user, user=owner, password="Brand-new-pass-77")
    assert await _closed_with(by_token) == 4401
    assert await _closed_with(by_session) == 4401
    _, connected, code = await _open(_job_path(job), headers=token_ws_headers(key))
    assert not connected and code == 4401


@pytest.mark.parametrize("consumer", ["job", "etl-rows", "analyzer-chat"])
async def test_the_poll_alone_closes_them_when_no_message_can_arrive(make_user, monkeypatch, consumer):
    """Another process (in-memory layer) cannot deliver the close message; the re-check on each poll does."""
    from etl.models import Branch, FetchJob, FileSource

    owner, job = await _owner_and_job(make_user)
    if consumer == "job":
        path = _job_path(job)
    elif consumer == "etl-rows":
        def make_fetch_job():
            source = FileSource.objects.create(name="s", kind=FileSource.Kind.DIRECTORY, root_path="/nonexistent")
            branch = Branch.objects.create(code="B", name="B", source=source)
            from datetime import date

            return FetchJob.objects.create(owner=owner, branch=branch, pos=1, work_date=date(2025, 1, 2))

        path = f"/ws/etl/jobs/?ids={(await sync_to_async(make_fetch_job)()).pk}"
    else:
        from analyzer.tests.conftest import SAMPLE_CSV, create_session

        session = await sync_to_async(create_session)(owner, "t.csv", SAMPLE_CSV)
        path = f"/ws/analyzer/sessions/{session.pk}/"
    monkeypatch.setattr(services, "user_sockets_close", lambda **kwargs: None)
    key = await sync_to_async(api_token)(owner)
    comm, connected, _ = await _open(path, headers=token_ws_headers(key))
    assert connected

    def deactivate():
        owner.is_active = False
        owner.save()

    await sync_to_async(deactivate)()
    assert await _closed_with(comm) == 4401


async def test_role_change_closes_an_admins_websocket(make_user, root_user):
    owner, job = await _owner_and_job(make_user)
    staff = await sync_to_async(make_user)("staffer", is_admin=True)
    comm, connected, _ = await _open(_job_path(job), headers=[await _session_cookie(staff)] + HOST + SAME_ORIGIN)
    assert connected  # staff may watch any job
    await sync_to_async(account_services.user_set_admin)(actor=root_user, user=staff, is_admin=False)
    assert await _closed_with(comm) == 4401
    _, connected, code = await _open(_job_path(job), headers=[await _session_cookie(staff)] + HOST + SAME_ORIGIN)
    assert not connected and code == 4404  # as a plain user now


async def test_revoking_the_token_closes_its_websocket_only(make_user):
    owner, job = await _owner_and_job(make_user)
    token, key = await sync_to_async(account_services.token_create)(user=owner, name="to revoke")
    other_key = await sync_to_async(api_token)(owner)
    revoked, connected, _ = await _open(_job_path(job), headers=token_ws_headers(key))
    assert connected
    kept, connected, _ = await _open(_job_path(job), headers=token_ws_headers(other_key))
    assert connected
    await sync_to_async(account_services.token_revoke)(actor=owner, token=token)
    assert await _closed_with(revoked) == 4401
    # The other token's socket stays: it gets the next status change, not a close.
    await sync_to_async(services.job_progress)(job=job, fraction=0.5, message="half")
    while True:
        message = await kept.receive_json_from(timeout=5)
        if message["type"] == "status" and message["job"]["message"] == "half":
            break
    await kept.disconnect()


async def test_logout_closes_the_sessions_websocket(make_user):
    owner, job = await _owner_and_job(make_user)
    client = Client()
    await sync_to_async(client.force_login)(owner)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    comm, connected, _ = await _open(_job_path(job), headers=[cookie] + HOST + SAME_ORIGIN)
    assert connected
    await sync_to_async(client.logout)()
    assert await _closed_with(comm) == 4401


async def test_deleting_the_user_closes_the_websocket(make_user, admin_user):
    owner, job = await _owner_and_job(make_user)
    key = await sync_to_async(api_token)(owner)
    comm, connected, _ = await _open(_job_path(job), headers=token_ws_headers(key))
    assert connected
    await asyncio.wait_for(sync_to_async(account_services.user_delete)(actor=admin_user, user=owner), 10)
    assert await _closed_with(comm) == 4401


async def test_a_stream_that_has_ended_still_closes_with_the_credentials(make_user, monkeypatch):
    """After `end` the socket may stay open; it keeps re-checking (no close message here either)."""
    owner, job = await _owner_and_job(make_user)
    await sync_to_async(services.job_succeed)(job=job, message="done")
    monkeypatch.setattr(services, "user_sockets_close", lambda **kwargs: None)
    key = await sync_to_async(api_token)(owner)
    comm, connected, _ = await _open(_job_path(job), headers=token_ws_headers(key))
    assert connected
    while (await comm.receive_json_from(timeout=5))["type"] != "end":
        pass
    await sync_to_async(account_services.user_set_password)(
        actor=await sync_to_async(make_user)("boss", is_root=True), user=owner, password="Brand-new-pass-78")
    assert await _closed_with(comm) == 4401
