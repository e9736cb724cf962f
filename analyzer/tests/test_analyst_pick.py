"""Picking an analyst on the session page and over the websocket; what the page says about each analyst; token
usage shown to staff (the session page, the admin) and to no one else."""

import json
import re

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from analyzer import conf
from analyzer.models import Answer
from analyzer.tests.conftest import ask, create_session
from analyzer.tests.fake_openai import FakeOpenAI, text_turn
from analyzer.tests.test_ws import connect

QUESTION = "tell me a story about these trades"


@pytest.fixture
def two_llms(monkeypatch):
    monkeypatch.setattr(conf, "LLM_PROVIDERS", [
        {"name": "local", "label": "Llama on the team's server", "base_url": "http://127.0.0.1:9/v1",
         "model": "llama3.1", "description": "Llama 3.1 8B on the team's GPU box"},
        {"name": "private", "label": "Private model", "base_url": "http://127.0.0.1:9/v1", "model": "qwen",
         "send_rows": False},
    ])
    monkeypatch.setattr(conf, "LLM_PROVIDER", "local")


def page_state(html: str) -> dict:
    return json.loads(re.search(r'<script id="analyzer-session" type="application/json">(.*?)</script>', html,
                                re.DOTALL).group(1))


@pytest.mark.django_db
def test_the_page_says_who_can_answer_before_the_first_question(client, user, trades_session, two_llms):
    client.force_login(user)
    html = client.get(trades_session.get_absolute_url()).content.decode()
    intro = html[html.index('data-testid="analysts-intro"'):html.index('data-testid="chat-log"')]
    assert "hidden" not in intro.split(">")[0]
    assert "Built-in analyst" in intro and "Offline, instant and free" in intro
    assert "Llama on the team&#x27;s server" in intro and "Llama 3.1 8B on the team&#x27;s GPU box" in intro
    assert "(default)" in intro.split("Llama on")[1].split("</li>")[0]
    assert "never a row of the file" in intro.split("Private model")[1]
    picker = html[html.index('id="chat-analyst"'):html.index("</select>")]
    assert re.findall(r'<option value="([^"]+)"', picker) == ["builtin", "local", "private"]
    assert '<option value="local" selected>' in picker and 'for="chat-analyst"' in html
    # Once a question was asked, the introduction is hidden (the answers name their analyst).
    ask(trades_session, user, "sum of qty by symbol")
    html = client.get(trades_session.get_absolute_url()).content.decode()
    assert re.search(r'data-testid="analysts-intro"[^>]*hidden', html)


@pytest.mark.django_db
def test_without_an_llm_there_is_nothing_to_pick(client, user, trades_session):
    client.force_login(user)
    html = client.get(trades_session.get_absolute_url()).content.decode()
    assert 'id="chat-analyst"' not in html and 'data-testid="analyst-builtin"' in html


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_websocket_takes_the_users_pick(make_user, two_llms):
    owner = await sync_to_async(make_user)("owner")
    session = await sync_to_async(create_session)(owner)
    communicator, connected, _ = await connect(session.pk, cookie_user=owner)
    assert connected
    await communicator.send_json_to({"type": "message", "text": QUESTION, "analyst": "gpt-9"})
    refusal = await communicator.receive_json_from(timeout=5)
    assert refusal["seq"] is None and "Unknown analyst 'gpt-9'" in refusal["data"]["message"]
    await communicator.send_json_to({"type": "message", "text": QUESTION, "analyst": ["local"]})
    assert "must be a string" in (await communicator.receive_json_from(timeout=5))["data"]["message"]
    await communicator.send_json_to({"type": "message", "text": QUESTION, "analyst": "private"})
    assert (await communicator.receive_json_from(timeout=5))["event"] == "user"
    answer = await sync_to_async(Answer.objects.get)(session=session)
    assert answer.provider == "private"
    await communicator.disconnect()


def _llm_answer(session, user, monkeypatch):
    with FakeOpenAI([text_turn("A story.")], usage=(1234, 56)) as server:
        monkeypatch.setattr(conf, "LLM_PROVIDERS", [{"name": "local", "label": "Scripted", "base_url": server.url,
                                                     "model": "scripted-model", "max_retries": 0}])
        monkeypatch.setattr(conf, "LLM_PROVIDER", "local")
        ask(session, user, QUESTION)
    return Answer.objects.get(session=session)


@pytest.mark.django_db
def test_staff_see_the_tokens_of_each_answer_on_their_session_page(client, admin_user, monkeypatch):
    session = create_session(admin_user)
    answer = _llm_answer(session, admin_user, monkeypatch)
    client.force_login(admin_user)
    usage = page_state(client.get(session.get_absolute_url()).content.decode())["usage"]
    assert usage == {str(answer.pk): {"analyst": "local", "model": "scripted-model", "prompt_tokens": 1234 + 40,
                                      "completion_tokens": 56 + 5, "estimated": False}}


@pytest.mark.django_db
def test_users_do_not_see_token_counts(client, user, trades_session, monkeypatch):
    _llm_answer(trades_session, user, monkeypatch)
    client.force_login(user)
    html = client.get(trades_session.get_absolute_url()).content.decode()
    assert page_state(html)["usage"] == {} and "1274" not in html


@pytest.mark.django_db
def test_the_admins_token_usage_list(client, user, admin_user, trades_session, monkeypatch):
    answer = _llm_answer(trades_session, user, monkeypatch)
    url = reverse("admin:analyzer_answerusage_changelist")
    client.force_login(admin_user)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "1,274 prompt + 61 completion tokens" in html and "scripted-model" in html
    assert QUESTION not in html and trades_session.title not in html  # usage, not the user's data
    assert client.get(reverse("admin:analyzer_answerusage_change", args=[answer.pk])).status_code == 200
    assert QUESTION not in client.get(reverse("admin:analyzer_answerusage_change", args=[answer.pk])).content.decode()
    # The answers themselves stay root's.
    assert client.get(reverse("admin:analyzer_answer_changelist")).status_code == 403
    client.force_login(user)
    assert client.get(url).status_code == 302  # not staff: the admin's login
