"""LLM providers through the official SDK against a real OpenAI-compatible server on 127.0.0.1: the streaming
protocol, usage, the SDK's errors, timeouts and retries as messages a user can act on, several providers, the
built-in analyst answering first, what is sent when rows may not be, and the daily token budget."""

import json
import threading
import time

import pytest
from django.core.exceptions import ValidationError

from analyzer import conf, services, tasks
from analyzer.agent.providers import analysts_available
from analyzer.models import Answer, Message
from analyzer.tests.conftest import ask, create_session
from analyzer.tests.fake_openai import FakeOpenAI, error_turn, text_turn, tool_turn

ALL_ROWS_SQL = "SELECT * FROM data ORDER BY date"
# Values that only rows hold: not a column's min, max or mean, not a category's value set.
ROW_ONLY_VALUES = ["370.1", "184.0", "187.9", "142.7", "2024-02-03", "2024-01-15", "175.0"]
STANDARD_PARAMETERS = {"model", "messages", "tools", "stream", "temperature", "stream_options"}


def provider(server, name="local", **extra):
    return {"name": name, "label": f"Scripted {name}", "base_url": server.url, "model": "scripted-model",
            "api_key_env": "ANALYZER_TEST_LLM_KEY", "max_retries": 0, "timeout": 10, **extra}


@pytest.fixture
def configure(monkeypatch):
    """Configure providers (dicts as in ANALYZER_LLM_PROVIDERS); the first is the default analyst."""

    def set_providers(*entries, default=None):
        monkeypatch.setattr(conf, "LLM_PROVIDERS", list(entries))
        monkeypatch.setattr(conf, "LLM_PROVIDER", default or entries[0]["name"])
        monkeypatch.setenv("ANALYZER_TEST_LLM_KEY", "sk-local-key")

    return set_providers


def texts(messages):
    return [m.data.get("text") or m.data.get("message") for m in messages if m.kind in ("text", "error")]


@pytest.mark.django_db
def test_the_stream_as_compatible_servers_send_it_and_its_usage(trades_session, user, configure):
    turns = [tool_turn(("generate_query", {"sql": "SELECT count(*) AS n FROM data", "explanation": "rows"}),
                       text="Counting."),
             tool_turn(("write_to_chat", {"text": "There are 10 trades."}), ("finish", {}))]
    with FakeOpenAI(turns, usage=(150, 25)) as server:
        configure(provider(server))
        messages = ask(trades_session, user, "tell me something interesting about these trades")
    assert [m.data["text"] for m in messages if m.kind == "text"] == ["Counting.", "There are 10 trades."]
    assert next(m for m in messages if m.kind == "query_result").data["result"] == [{"n": 10}]
    done = messages[-1]
    assert done.kind == "done" and done.data["status"] == "succeeded"
    assert done.data["analyst"] == "local" and done.data["analyst_label"] == "Scripted local"
    streamed = [r for r in server.requests if r.get("stream")]
    assert len(streamed) == 2
    for body in streamed:
        assert set(body) <= STANDARD_PARAMETERS  # nothing a compatible server would refuse
        assert body["stream_options"] == {"include_usage": True} and body["model"] == "scripted-model"
    assert server.headers[0]["authorization"] == "Bearer sk-local-key"
    answer = Answer.objects.get()
    # Two streamed turns of 150 + 25 as the last chunks reported them, plus the title call's 40 + 5.
    assert (answer.prompt_tokens, answer.completion_tokens) == (2 * 150 + 40, 2 * 25 + 5)
    assert answer.analyst == "local" and answer.model == "scripted-model" and not answer.usage_estimated


@pytest.mark.django_db
def test_without_the_usage_chunk_tokens_are_estimated(trades_session, user, configure):
    with FakeOpenAI([text_turn("A short reply about the trades.")]) as server:
        configure(provider(server, stream_usage=False))
        ask(trades_session, user, "tell me a story about these trades")
    assert "stream_options" not in server.requests[0]
    answer = Answer.objects.get()
    assert answer.usage_estimated and answer.prompt_tokens > 100 and answer.completion_tokens > 0


@pytest.mark.django_db
@pytest.mark.parametrize("status, expected", [
    (401, ["refused the API key (HTTP 401)", "ANALYZER_TEST_LLM_KEY"]),
    (404, ["no model “scripted-model”", "check the model name and the base URL"]),
    (400, ["rejected the request (HTTP 400)", "maximum context length"]),
    (500, ["failed with HTTP 500 after 1 attempt(s); try again later", "model overloaded"]),
])
def test_error_statuses_become_messages_a_user_can_act_on(trades_session, user, configure, status, expected):
    with FakeOpenAI([], status=status) as server:
        configure(provider(server))
        messages = ask(trades_session, user, "tell me a story about these trades")
    assert [m.kind for m in messages][-2:] == ["error", "done"]
    for part in expected:
        assert part in messages[-2].data["message"]
    assert messages[-1].data["status"] == "failed" and Answer.objects.get().status == "failed"


@pytest.mark.django_db
def test_rate_limit_is_retried_by_the_sdk_after_retry_after(trades_session, user, configure):
    with FakeOpenAI([text_turn("Done after waiting.")], errors=[(429, {"retry-after": "1"})]) as server:
        configure(provider(server, max_retries=2))
        messages = ask(trades_session, user, "tell me a story about these trades")
    assert "Done after waiting." in "".join(m.data.get("text", "") for m in messages if m.kind == "text")
    assert server.request_times[1] - server.request_times[0] >= 0.9  # the SDK waited as the server asked
    assert Answer.objects.get().status == "succeeded"


@pytest.mark.django_db
def test_rate_limit_that_lasts_says_when_to_try_again(trades_session, user, configure):
    errors = [(429, {"retry-after": "1"}), (429, {"retry-after": "7"})]
    with FakeOpenAI([], errors=errors) as server:
        configure(provider(server, max_retries=1))
        messages = ask(trades_session, user, "tell me a story about these trades")
    message = messages[-2].data["message"]
    assert "limiting requests (HTTP 429)" in message and "after 2 attempt(s)" in message
    assert "try again in 7 s" in message and len(server.requests) == 2


@pytest.mark.django_db
def test_a_hung_server_times_out_with_the_sdks_timeout(trades_session, user, configure):
    with FakeOpenAI([], hang=True) as server:
        configure(provider(server, timeout=1))
        started = time.monotonic()
        messages = ask(trades_session, user, "tell me a story about these trades")
    assert time.monotonic() - started < 6
    assert "did not answer within 1 s (1 attempt(s))" in messages[-2].data["message"]
    assert messages[-1].kind == "done" and messages[-1].data["status"] == "failed"


@pytest.mark.django_db
def test_an_error_inside_the_stream(trades_session, user, configure):
    with FakeOpenAI([text_turn("Half an ans")[:-1] + error_turn("out of memory while generating")]) as server:
        configure(provider(server))
        messages = ask(trades_session, user, "tell me a story about these trades")
    assert "reported an error while answering: out of memory while generating" in messages[-2].data["message"]


@pytest.mark.django_db(transaction=True)
def test_stop_while_the_sdk_waits_to_retry(user, configure):
    session = create_session(user)
    with FakeOpenAI([text_turn("too late")], errors=[(429, {"retry-after": "30"})]) as server:
        configure(provider(server, max_retries=2))
        answer = services.answer_request(session=session, user=user, text="tell me a story about these trades")

        def run():
            from django.db import connection
            try:
                tasks.answer_run(answer.pk)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.requests:
            assert time.monotonic() < deadline, "the provider was never called"
            time.sleep(0.05)
        time.sleep(0.3)
        stopped_at = time.monotonic()
        services.answer_stop(session=session, user=user)
        thread.join(timeout=10)
        assert not thread.is_alive() and time.monotonic() - stopped_at < 2
        assert len(server.requests) == 1  # the retry never happened
    answer.refresh_from_db()
    assert answer.status == "cancelled"


@pytest.mark.django_db
def test_the_builtin_analyst_answers_first_when_it_is_sure(trades_session, user, configure):
    with FakeOpenAI([text_turn("From the LLM.")]) as server:
        configure(provider(server))
        sure = ask(trades_session, user, "sum of qty by symbol")
        assert server.requests == []  # fast and free: the LLM was not asked
        handed = ask(trades_session, user, "why do traders prefer AAPL?")
    assert sure[-1].data["analyst"] == "builtin" and sure[-1].data["analyst_label"] == "Built-in analyst"
    assert list(next(m for m in sure if m.kind == "query_result").data["result"][0].values()) == ["TSLA", 35]
    assert handed[-1].data["analyst"] == "local" and "From the LLM." in "".join(texts(handed))
    assert server.requests[0]["messages"][-1] == {"role": "user", "content": "why do traders prefer AAPL?"}
    first, second = Answer.objects.order_by("pk")
    assert (first.analyst, first.model, first.prompt_tokens) == ("builtin", "", 0)
    assert (second.analyst, second.provider) == ("local", "local") and second.prompt_tokens == 120


@pytest.mark.django_db
def test_an_unclear_question_goes_to_the_llm_instead_of_asking_back(trades_session, user, configure):
    # Alone, the built-in analyst asks back which measure is meant; with an LLM configured it hands over.
    alone = ask(trades_session, user, "what is the average?")
    assert alone[-1].data["analyst"] == "builtin" and "?" in texts(alone)[0]
    with FakeOpenAI([text_turn("The average price is 214.08.")]) as server:
        configure(provider(server))
        handed = ask(trades_session, user, "what is the average?")
    assert handed[-1].data["analyst"] == "local" and len(server.requests) >= 1


@pytest.mark.django_db
def test_several_providers_and_the_users_pick(trades_session, user, configure):
    with FakeOpenAI([text_turn("From the first.")]) as first, FakeOpenAI([text_turn("From the second.")]) as second:
        configure(provider(first, name="first"), provider(second, name="second", send_rows=False,
                                                          description="A small local model"))
        names = [(a["name"], a["kind"], a["default"]) for a in analysts_available()]
        assert names == [("builtin", "builtin", False), ("first", "llm", True), ("second", "llm", False)]
        assert "never a row" in analysts_available()[2]["can"] and "A small local model" in analysts_available()[2]["can"]
        answer = services.answer_request(session=trades_session, user=user, text="tell me a story", analyst="second")
        tasks.answer_run(answer.pk)
        assert first.requests == [] and second.requests[0]["messages"][-1]["content"] == "tell me a story"
        with pytest.raises(ValidationError, match="Unknown analyst"):
            services.answer_request(session=trades_session, user=user, text="hi", analyst="gpt-9")
        builtin_only = services.answer_request(session=trades_session, user=user, text="tell me a story",
                                               analyst="builtin")
        tasks.answer_run(builtin_only.pk)
        assert len(second.requests) == 2 and first.requests == []  # the second's title call; nothing more
    assert Message.objects.filter(answer=builtin_only, kind="done").get().data["analyst"] == "builtin"


def _all_sent(server) -> str:
    return json.dumps(server.requests)


@pytest.mark.django_db
@pytest.mark.parametrize("send_rows", [True, False])
def test_a_provider_that_may_not_see_rows_gets_schema_and_profile_only(trades_session, user, configure, send_rows):
    turns = [tool_turn(("generate_query", {"sql": ALL_ROWS_SQL})),
             tool_turn(("create_plot", {"title": "Prices", "sql": ALL_ROWS_SQL, "vega_lite_spec": {
                 "mark": "point", "encoding": {"x": {"field": "qty", "type": "quantitative"},
                                               "y": {"field": "price", "type": "quantitative"}}}})),
             tool_turn(("finish", {}))]
    with FakeOpenAI(turns) as server:
        configure(provider(server, send_rows=send_rows))
        messages = ask(trades_session, user, "show me every trade please")
    sent = _all_sent(server)
    # The user sees every row either way.
    assert len(next(m for m in messages if m.kind == "query_result").data["result"]) == 10
    assert len([m for m in messages if m.kind == "plot"]) == 1
    assert "symbol (VARCHAR)" in sent and '\\"distinct\\"' in sent  # the schema and the profile go
    if send_rows:
        assert all(value in sent for value in ROW_ONLY_VALUES)  # sample rows and query results go
    else:
        assert not [value for value in ROW_ONLY_VALUES if value in sent]
        assert "not sent: this analyst may not see rows" in sent


@pytest.mark.django_db
def test_the_daily_token_budget_stops_an_answer_and_says_so(trades_session, user, configure, monkeypatch):
    monkeypatch.setattr(conf, "DAILY_TOKEN_BUDGET", 300)
    turns = [tool_turn(("generate_query", {"sql": "SELECT 1 AS one"})) for _ in range(3)]
    with FakeOpenAI(turns, usage=(120, 30)) as server:  # 150 a turn: the second reaches 300
        configure(provider(server))
        stopped = ask(trades_session, user, "tell me a story about these trades")
        assert len(server.requests) == 2
        message = [m for m in stopped if m.kind == "error"][0].data["message"]
        assert "stopped: it reached your daily budget of 300 LLM tokens (300 used today)" in message
        assert stopped[-1].data["status"] == "failed" and Answer.objects.get().tokens == 300

        refused = ask(trades_session, user, "tell me another story")
        assert len(server.requests) == 2  # not even asked
        assert "you have used your daily budget of 300 LLM tokens" in texts(refused)[0]
        # The built-in analyst still answers what it is sure of.
        builtin = ask(trades_session, user, "sum of qty by symbol")
        assert builtin[-1].data == {"data_updated": False, "status": "succeeded", "analyst": "builtin",
                                    "analyst_label": "Built-in analyst"}


@pytest.mark.django_db
def test_the_budget_is_per_user(trades_session, user, other_user, configure, monkeypatch):
    monkeypatch.setattr(conf, "DAILY_TOKEN_BUDGET", 160)
    other_session = create_session(other_user)
    with FakeOpenAI([text_turn("one"), text_turn("two")], usage=(120, 30)) as server:
        configure(provider(server))
        assert ask(trades_session, user, "tell me a story about these trades")[-1].data["status"] == "succeeded"
        assert ask(trades_session, user, "tell me another story")[-1].data["status"] == "failed"  # 195 used
        answered = ask(other_session, other_user, "tell me a story about these trades")
    assert answered[-1].data["status"] == "succeeded" and "two" in "".join(texts(answered))
    assert len([r for r in server.requests if r.get("stream")]) == 2
