"""Answers are the owner's: nobody else — another user, an admin, root — watches or stops an analyzer answer,
on any route (the session page, the API, the generic job websocket, the chat websocket, the admin).
The same holds for the session's messages and its upload processing job."""

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from analyzer import services
from analyzer.models import Answer, Message
from analyzer.tests.conftest import create_session
from analyzer.tests.test_ws import connect

OTHERS = ("intruder", "staff", "root")


def _people(make_user):
    owner = make_user("owner")
    return owner, {
        "intruder": make_user("intruder"),
        "staff": make_user("staff", is_admin=True),
        "root": make_user("rootuser", is_root=True),
    }


def _session_with_queued_answer(owner):
    session = create_session(owner)
    answer = services.answer_request(session=session, user=owner, text="How many rows are there?")
    return session, answer


def _answer_state(pk):
    answer = Answer.objects.get(pk=pk)
    return answer.status, answer.cancel_requested


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("who", OTHERS)
async def test_answer_websocket_refuses_others_and_their_cancel(make_user, who):
    owner, others = await sync_to_async(_people)(make_user)
    session, answer = await sync_to_async(_session_with_queued_answer)(owner)
    path = f"/ws/analyzer/answers/{answer.pk}/"
    communicator, connected, code = await connect(session.pk, path=path, cookie_user=others[who])
    assert not connected and code == 4404
    assert await sync_to_async(_answer_state)(answer.pk) == ("queued", False)
    # The owner may: the stream shows the answer and the owner's cancel stops it.
    communicator, connected, _ = await connect(session.pk, path=path, cookie_user=owner)
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["job"]["status"] == "queued"
    await communicator.send_json_to({"type": "cancel"})
    while (message := await communicator.receive_json_from(timeout=10))["type"] != "end":
        pass
    await communicator.disconnect()
    assert await sync_to_async(_answer_state)(answer.pk) == ("cancelled", True)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("who", OTHERS)
async def test_chat_websocket_refuses_others(make_user, who):
    owner, others = await sync_to_async(_people)(make_user)
    session, answer = await sync_to_async(_session_with_queued_answer)(owner)
    _, connected, code = await connect(session.pk, cookie_user=others[who])
    assert not connected and code == 4404
    processing = f"/ws/analyzer/processings/{session.processing.pk}/"
    _, connected, code = await connect(session.pk, path=processing, cookie_user=others[who])
    assert not connected and code == 4404
    assert await sync_to_async(_answer_state)(answer.pk) == ("queued", False)


@pytest.mark.django_db
@pytest.mark.parametrize("who", OTHERS)
def test_pages_and_api_refuse_others(make_user, auth_client, who):
    owner, others = _people(make_user)
    session, answer = _session_with_queued_answer(owner)
    result = services.message_add(session=session, answer=answer, kind=Message.Kind.QUERY_RESULT,
                                  data={"sql": "SELECT 1", "is_error": False, "columns": [], "result": []},
                                  rows_kept=[{"secret": 42}])
    page = Client()
    page.force_login(others[who])
    for url in (f"/analyzer/sessions/{session.pk}/", f"/analyzer/sessions/{session.pk}/results/{result.pk}.csv"):
        assert page.get(url).status_code == 404, url
    assert page.post(f"/analyzer/sessions/{session.pk}/delete/").status_code == 404
    api = auth_client(others[who])
    for url in (f"/api/analyzer/sessions/{session.pk}/",
                f"/api/analyzer/sessions/{session.pk}/results/{result.pk}.csv"):
        response = api.get(url)
        assert response.status_code == 404, url
        assert b"secret" not in response.content and b"How many rows" not in response.content
    assert api.delete(f"/api/analyzer/sessions/{session.pk}/").status_code == 404
    listed = api.get("/api/analyzer/sessions/").json()
    assert session.pk not in [row["id"] for row in listed["results"]]
    assert _answer_state(answer.pk) == ("queued", False)
    # The owner still gets everything.
    assert auth_client(owner).get(f"/api/analyzer/sessions/{session.pk}/").json()["running"]


@pytest.mark.django_db
@pytest.mark.parametrize("who", ("staff", "root"))
def test_admin_cannot_change_or_stop_answers(make_user, who):
    owner, others = _people(make_user)
    session, answer = _session_with_queued_answer(owner)
    message = Message.objects.filter(answer=answer).first()
    admin = Client()
    admin.force_login(others[who])
    for model, pk in (("answer", answer.pk), ("message", message.pk), ("processing", session.processing.pk),
                      ("analysissession", session.pk)):
        response = admin.post(f"/admin/analyzer/{model}/{pk}/change/", {"cancel_requested": "on", "status": "cancelled"})
        assert response.status_code in (403, 302), (model, response.status_code)
        response = admin.post(f"/admin/analyzer/{model}/{pk}/delete/", {"post": "yes"})
        assert response.status_code == 403, (model, response.status_code)
        if who == "staff" and model != "analysissession":
            assert admin.get(f"/admin/analyzer/{model}/{pk}/change/").status_code == 403, model
    assert _answer_state(answer.pk) == ("queued", False)
    assert Message.objects.filter(pk=message.pk).exists()
