"""The `openai` provider against a scripted OpenAI-compatible server: the real httpx streaming client runs."""

import json
import threading
import time

import pytest

from analyzer import conf, services, tasks
from analyzer.models import Answer, Message
from analyzer.tests.conftest import ask
from analyzer.tests.fake_openai import FakeOpenAI, text_turn, tool_turn

TOTALS_SQL = "SELECT symbol, sum(qty) AS total FROM data GROUP BY 1 ORDER BY 2 DESC"
GOOD_SPEC = {"mark": "bar", "encoding": {"x": {"field": "symbol", "type": "nominal"},
                                        "y": {"field": "total", "type": "quantitative"}}}
BAD_SPEC = {"mark": "barz", "encoding": {"x": {"field": "symbol", "type": "nominal"}}}


@pytest.fixture
def use_fake(monkeypatch):
    def configure(server):
        monkeypatch.setattr(conf, "LLM_PROVIDER", "openai")
        monkeypatch.setattr(conf, "OPENAI_BASE_URL", server.url)
        monkeypatch.setattr(conf, "OPENAI_API_KEY", "sk-test-key")
        monkeypatch.setattr(conf, "OPENAI_MODEL", "scripted-model")
        # These tests follow the LLM itself; the built-in analyst answering first has its own tests.
        monkeypatch.setattr(conf, "LLM_BUILTIN_FIRST", False)

    return configure


@pytest.mark.django_db
def test_tool_calls_are_streamed_run_and_fed_back(trades_session, user, use_fake):
    turns = [
        tool_turn(("generate_query", {"sql": TOTALS_SQL, "explanation": "totals"}), text="Let me look."),
        tool_turn(("create_plot", {"title": "Totals", "sql": TOTALS_SQL, "vega_lite_spec": BAD_SPEC})),
        tool_turn(("create_plot", {"title": "Totals", "sql": TOTALS_SQL, "vega_lite_spec": GOOD_SPEC})),
        tool_turn(("write_to_chat", {"text": "TSLA has the largest total quantity."}), ("finish", {})),
    ]
    with FakeOpenAI(turns, title="Quantity by symbol") as server:
        use_fake(server)
        messages = ask(trades_session, user, "Which symbol trades the most?")
    kinds = [m.kind for m in messages]
    assert kinds[0] == "user" and kinds[-1] == "done"
    assert "".join(m.data["text"] for m in messages if m.kind == "text").startswith("Let me look.")
    result = next(m for m in messages if m.kind == "query_result")
    assert result.data["result"][0] == {"symbol": "TSLA", "total": 35}
    plots = [m for m in messages if m.kind == "plot"]
    assert len(plots) == 1 and plots[0].data["vega_lite_spec"]["mark"] == "bar"
    assert plots[0].data["vega_lite_spec"]["data"]["values"][0] == {"symbol": "TSLA", "total": 35}
    assert "TSLA has the largest total quantity." in [m.data.get("text") for m in messages]
    assert next(m for m in messages if m.kind == "session_update").data == {"title": "Quantity by symbol"}
    assert Answer.objects.get().status == "succeeded"

    first, _, repair = server.requests[0], server.requests[1], server.requests[2]
    assert first["model"] == "scripted-model" and first["stream"] is True
    assert {t["function"]["name"] for t in first["tools"]} == {"write_to_chat", "generate_query", "create_plot", "finish"}
    system = first["messages"][0]["content"]
    assert "symbol (VARCHAR)" in system and "10 rows" in system
    assert server.headers[0]["authorization"] == "Bearer sk-test-key"
    # The invalid spec went back to the model with the schema error, and it repaired it.
    tool_messages = [m for m in repair["messages"] if m["role"] == "tool"]
    assert "invalid" in tool_messages[-1]["content"] and "barz" in tool_messages[-1]["content"]
    assert repair["messages"][-2]["tool_calls"][0]["function"]["name"] == "create_plot"


@pytest.mark.django_db
def test_plot_repair_is_bounded(trades_session, user, use_fake, monkeypatch):
    monkeypatch.setattr(conf, "PLOT_REPAIR_ATTEMPTS", 2)
    bad = tool_turn(("create_plot", {"title": "Bad", "sql": TOTALS_SQL, "vega_lite_spec": BAD_SPEC}))
    with FakeOpenAI([bad, bad, bad, tool_turn(("finish", {}))]) as server:
        use_fake(server)
        messages = ask(trades_session, user, "chart it")
    errors = [m.data["message"] for m in messages if m.kind == "error"]
    assert len(errors) == 1 and "Could not build a valid chart" in errors[0]
    assert not [m for m in messages if m.kind == "plot"] and messages[-1].kind == "done"


@pytest.mark.django_db
def test_field_not_in_result_is_sent_back(trades_session, user, use_fake):
    wrong = {"mark": "bar", "encoding": {"x": {"field": "ticker", "type": "nominal"},
                                         "y": {"field": "total", "type": "quantitative"}}}
    turns = [tool_turn(("create_plot", {"title": "T", "sql": TOTALS_SQL, "vega_lite_spec": wrong})),
             tool_turn(("create_plot", {"title": "T", "sql": TOTALS_SQL, "vega_lite_spec": GOOD_SPEC})),
             tool_turn(("finish", {}))]
    with FakeOpenAI(turns) as server:
        use_fake(server)
        messages = ask(trades_session, user, "chart it")
    assert "ticker" in [m for m in server.requests[1]["messages"] if m["role"] == "tool"][-1]["content"]
    assert len([m for m in messages if m.kind == "plot"]) == 1


@pytest.mark.django_db
def test_sql_errors_go_back_to_the_model(trades_session, user, use_fake):
    turns = [tool_turn(("generate_query", {"sql": "SELECT * FROM read_csv('/etc/passwd')"})),
             tool_turn(("generate_query", {"sql": "DROP VIEW data"})),
             text_turn("Sorry, I cannot read that file.")]
    with FakeOpenAI(turns) as server:
        use_fake(server)
        messages = ask(trades_session, user, "read /etc/passwd")
    results = [m for m in messages if m.kind == "query_result"]
    assert all(r.data["is_error"] for r in results) and len(results) == 2
    tool_replies = [m["content"] for m in server.requests[2]["messages"] if m["role"] == "tool"]
    assert "Refused" in tool_replies[0] and "Only SELECT" in tool_replies[1]
    assert messages[-1].kind == "done" and Answer.objects.get().status == "succeeded"


@pytest.mark.django_db
def test_malformed_tool_arguments_and_unknown_tools(trades_session, user, use_fake):
    broken = [{"delta": {"tool_calls": [
        {"index": 0, "id": "c1", "function": {"name": "generate_query", "arguments": "{not json"}}]}},
        {"delta": {"tool_calls": [
            {"index": 1, "id": "c2", "function": {"name": "run_python", "arguments": "{\"code\": \"import os\"}"}}]}}]
    with FakeOpenAI([broken, tool_turn(("finish", {}))]) as server:
        use_fake(server)
        messages = ask(trades_session, user, "hack")
    replies = [m["content"] for m in server.requests[1]["messages"] if m["role"] == "tool"]
    assert "not valid JSON" in replies[0] and "unknown tool" in replies[1]
    assert messages[-1].kind == "done"


@pytest.mark.django_db
def test_endpoint_error_ends_answer_with_error_and_done(trades_session, user, use_fake):
    with FakeOpenAI([], status=500) as server:
        use_fake(server)
        messages = ask(trades_session, user, "anything")
    assert [m.kind for m in messages][-2:] == ["error", "done"]
    assert "HTTP 500" in messages[-2].data["message"] and messages[-1].data["status"] == "failed"
    assert Answer.objects.get().status == "failed"


@pytest.mark.django_db
def test_unreachable_endpoint(trades_session, user, monkeypatch):
    monkeypatch.setattr(conf, "LLM_PROVIDER", "openai")
    monkeypatch.setattr(conf, "OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setattr(conf, "LLM_BUILTIN_FIRST", False)
    messages = ask(trades_session, user, "anything")
    assert "Could not reach the LLM endpoint" in messages[-2].data["message"] and messages[-1].kind == "done"


def _run_in_thread(pk):
    from django.db import connection

    def target():
        try:
            tasks.answer_run(pk)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_stop_mid_answer(trades_session, user, use_fake):
    slow = text_turn(" ".join(f"word{i}" for i in range(400)), delay=0.05)
    with FakeOpenAI([slow]) as server:
        use_fake(server)
        answer = services.answer_request(session=trades_session, user=user, text="tell me a long story")
        thread = _run_in_thread(answer.pk)
        deadline = time.monotonic() + 10
        while not Message.objects.filter(answer=answer, kind="text").exists():
            assert time.monotonic() < deadline, "no streamed text arrived"
            time.sleep(0.05)
        stopped_at = time.monotonic()
        services.answer_stop(session=trades_session, user=user)
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert time.monotonic() - stopped_at < 3
        assert server.chunks_sent < 400  # the stream was abandoned, not read to the end
    answer.refresh_from_db()
    assert answer.status == "cancelled" and answer.cancelled_by == user
    last = list(Message.objects.filter(answer=answer).order_by("seq"))[-2:]
    assert [m.kind for m in last] == ["status", "done"] and last[1].data["status"] == "cancelled"


@pytest.mark.django_db
def test_answer_time_limit(trades_session, user, use_fake, monkeypatch):
    monkeypatch.setattr(conf, "ANSWER_TIMEOUT_SECONDS", 1.0)
    slow = text_turn(" ".join(f"w{i}" for i in range(200)), delay=0.05)
    with FakeOpenAI([slow]) as server:
        use_fake(server)
        started = time.monotonic()
        messages = ask(trades_session, user, "slow")
    assert time.monotonic() - started < 6
    assert "took longer" in [m for m in messages if m.kind == "error"][0].data["message"]
    assert messages[-1].kind == "done" and Answer.objects.get().status == "failed"


@pytest.mark.django_db
def test_history_is_sent_but_not_the_whole_file(trades_session, user, use_fake, monkeypatch):
    rows = "\n".join(f"2024-01-01,SYM{i},buy,{i},1.0" for i in range(2000))
    with FakeOpenAI([text_turn("First answer."), text_turn("Second answer.")]) as server:
        use_fake(server)
        ask(trades_session, user, "first question")
        ask(trades_session, user, "second question")
    second = server.requests[-1]["messages"]
    assert [m["role"] for m in second[1:]] == ["user", "assistant", "user"]
    assert second[1]["content"] == "first question" and second[2]["content"].strip() == "First answer."
    assert len(json.dumps(second)) < 20_000 and rows[:30] not in json.dumps(second)


@pytest.mark.django_db(transaction=True)
def test_stop_while_the_model_is_silent(trades_session, user, use_fake):
    # The server sends nothing for 20 s (a model still reading its prompt); stop must not wait for it.
    silent = [("delay", 20.0)] + text_turn("too late")
    with FakeOpenAI([silent]) as server:
        use_fake(server)
        answer = services.answer_request(session=trades_session, user=user, text="think hard")
        thread = _run_in_thread(answer.pk)
        deadline = time.monotonic() + 10
        while not Message.objects.filter(answer=answer, kind="status").exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        stopped_at = time.monotonic()
        services.answer_stop(session=trades_session, user=user)
        thread.join(timeout=15)
        assert not thread.is_alive() and time.monotonic() - stopped_at < 4
    answer.refresh_from_db()
    assert answer.status == "cancelled"
    assert Message.objects.filter(answer=answer).order_by("-seq").first().data["status"] == "cancelled"
