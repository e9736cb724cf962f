"""Model-written queries are read within budgets: cells cut with a marker, a result too large refused,
the rows kept bounded in bytes, a time limit that stops heavy queries, and nothing of the host shown."""

import json
import threading

import pytest

from analyzer import conf, duck, services
from analyzer.models import Message
from analyzer.tests.conftest import ask

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_path(trades_session):
    return services.session_data_path(session=trades_session)


# --- result budgets --------------------------------------------------------------------------------


def test_huge_cells_end_with_result_too_large(data_path):
    with pytest.raises(duck.QueryFailed) as info:
        duck.query_run(data_path=data_path, sql="SELECT repeat('x', 50000000) FROM range(40)")
    message = str(info.value)
    assert message.startswith("Result too large")
    assert "64.0 MB" in message and "LIMIT" in message


def test_result_too_large_reaches_the_chat_as_a_plain_error(trades_session, user):
    messages = ask(trades_session, user, "SELECT repeat('x', 50000000) AS big FROM range(40)")
    result = next(m for m in messages if m.kind == "query_result")
    assert result.data["is_error"] and result.data["error"].startswith("Result too large")
    assert len(json.dumps(result.data)) < 10_000
    assert messages[-1].kind == "done"


def test_a_long_cell_is_cut_with_a_visible_marker(data_path):
    result = duck.query_run(data_path=data_path, sql="SELECT repeat('ab', 5000) AS s, 7 AS n")
    cell = result.rows[0]["s"]
    assert cell.startswith("ab" * (conf.RESULT_CELL_CHARS // 2))
    assert cell.endswith(f"{duck.TRUNCATED_MARKER}: 10,000 bytes in all]")
    assert len(cell) < conf.RESULT_CELL_CHARS + 60
    assert result.rows[0]["n"] == 7
    assert result.cells_truncated == 1


def test_short_values_keep_their_types(data_path):
    result = duck.query_run(
        data_path=data_path,
        sql="SELECT [1, 2, 3] AS l, {'a': 'x', 'b': 2} AS s, '\\xAA\\xBB'::BLOB AS b, 'hi' AS t, NULL AS z, "
            "1.5::DECIMAL(10, 2) AS d, DATE '2024-01-02' AS day",
    )
    assert result.rows == [{"l": [1, 2, 3], "s": {"a": "x", "b": 2}, "b": "AABB", "t": "hi", "z": None,
                            "d": 1.5, "day": "2024-01-02"}]
    assert result.cells_truncated == 0


def test_a_long_list_is_cut_too(data_path):
    result = duck.query_run(data_path=data_path, sql="SELECT range(0, 100000) AS l")
    cell = result.rows[0]["l"]
    assert isinstance(cell, str) and cell.startswith("[0,1,2,") and duck.TRUNCATED_MARKER in cell
    assert len(cell) < conf.RESULT_CELL_CHARS + 60


def test_rows_kept_stop_at_the_stored_byte_budget(data_path, monkeypatch):
    monkeypatch.setattr(conf, "RESULT_STORED_BYTES", 50_000)
    result = duck.query_run(data_path=data_path, sql="SELECT range AS i, repeat('y', 1000) AS s FROM range(1000)")
    assert result.truncated
    assert 0 < len(result.rows) < 1000
    assert len(json.dumps(result.rows)) <= 50_000
    assert [row["i"] for row in result.rows] == list(range(len(result.rows)))


def test_row_cap_still_applies(data_path):
    result = duck.query_run(data_path=data_path, sql="SELECT range AS i FROM range(100)", max_rows=10)
    assert result.truncated and [r["i"] for r in result.rows] == list(range(10))
    result = duck.query_run(data_path=data_path, sql="SELECT range AS i FROM range(10)", max_rows=10)
    assert not result.truncated and len(result.rows) == 10


def test_stored_query_message_is_bounded(trades_session, user):
    messages = ask(trades_session, user, "SELECT range AS i, repeat('z', 3000) AS s FROM range(20000)")
    result = next(m for m in messages if m.kind == "query_result")
    assert not result.data["is_error"], result.data
    stored = Message.objects.get(pk=result.pk)
    assert len(json.dumps(stored.rows_kept)) <= conf.RESULT_STORED_BYTES
    assert len(json.dumps(stored.data)) <= conf.RESULT_STORED_BYTES
    assert stored.data["truncated"] is True
    assert stored.data["cells_truncated"] == len(stored.rows_kept)
    assert all(duck.TRUNCATED_MARKER in row["s"] for row in stored.data["result"])


# --- time limit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sql", [
    pytest.param("SELECT count(*) FROM range(1000000) a, range(100000) b", id="cross-join"),  # ~10 s of work
    pytest.param("SELECT sum(strlen(repeat(range::VARCHAR, 10000))) FROM range(100000000)", id="repeat"),
    pytest.param("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t",
                 id="recursive-cte"),
    pytest.param("WITH RECURSIVE t(n, s) AS (SELECT 1, 'x' UNION ALL SELECT n + 1, right(s || md5(n::VARCHAR), 100) "
                 "FROM t) SELECT count(*) FROM t", id="recursive-strings"),
    pytest.param("SELECT range AS i FROM range(10000000000) ORDER BY random() LIMIT 3", id="big-sort"),
])
def test_heavy_queries_are_stopped_at_the_time_limit(data_path, sql):
    # How soon after the limit they stop is measured in bench/analyzer_query_limits.py.
    with pytest.raises(duck.QueryFailed) as info:
        duck.query_run(data_path=data_path, sql=sql, timeout=1)
    assert str(info.value) == "The query took longer than 1 s and was stopped."


def test_stop_interrupts_a_running_query(data_path):
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(duck.QueryFailed, match="^The query was stopped.$"):
        duck.query_run(data_path=data_path, timeout=60, cancel_check=stop.is_set,
                       sql="SELECT count(*) FROM range(100000) a, range(100000) b")


# --- nothing of the host ---------------------------------------------------------------------------


@pytest.mark.parametrize("sql", [
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_databases()",
    "SELECT * FROM duckdb_databases",
    "SELECT * FROM pg_settings",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM src.data",
    "SELECT current_setting('allowed_paths')",
    "SELECT * FROM query('SELECT * FROM duckdb_settings()')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM duckdb_extensions()",
    "SELECT (SELECT count(*) FROM duckdb_settings()) AS n FROM data",
    "WITH duckdb_databases AS (SELECT 1 AS x) SELECT * FROM (SELECT * FROM duckdb_databases), duckdb_databases",
])
def test_settings_catalog_and_files_are_refused_plainly(data_path, sql):
    with pytest.raises(duck.QueryRefused) as info:
        duck.query_run(data_path=data_path, sql=sql)
    message = str(info.value)
    assert message == duck.REFUSED_MESSAGE
    assert "/" not in message


@pytest.mark.parametrize("sql,why", [
    ("COPY data TO '/tmp/stolen.csv'", "COPY statement"),
    ("COPY (SELECT * FROM data) TO '/tmp/stolen.parquet' (FORMAT parquet)", "COPY statement"),
    ("ATTACH '/tmp/evil.db' AS evil", "ATTACH statement"),
    ("INSTALL httpfs", "statement"),
    ("LOAD httpfs", "statement"),
    ("SET allowed_paths = ['/']", "SET statement"),
])
def test_statements_that_touch_files_are_refused(data_path, sql, why):
    with pytest.raises(duck.QueryRefused, match=why) as info:
        duck.query_run(data_path=data_path, sql=sql)
    assert "/tmp" not in str(info.value)


def test_the_session_file_still_answers_through_data_and_ctes(data_path):
    result = duck.query_run(
        data_path=data_path,
        sql="WITH t AS (SELECT symbol, qty FROM data), u AS (SELECT * FROM t WHERE qty > 5) "
            "SELECT count(*) AS n, (SELECT max(i) FROM generate_series(1, 3) g(i)) AS m, "
            "(SELECT count(*) FROM unnest([1, 2])) AS k FROM u",
    )
    assert result.rows == [{"n": 7, "m": 3, "k": 2}]


def test_error_messages_lose_host_paths(data_path):
    cleaned = duck.message_clean(f"IO Error: could not open {data_path} and /root/.duckdb/extensions/x.so",
                                 data_path=data_path)
    assert data_path not in cleaned and "/root" not in cleaned
    assert cleaned == "IO Error: could not open data and …"


def test_an_oversized_event_is_stored_as_a_short_error(trades_session, user, monkeypatch):
    answer = services.answer_request(session=trades_session, user=user, text="anything")
    sink = services.AnswerSink(answer)
    sink.emit("text", {"text": "x" * (services.message_max_bytes() + 1)})
    stored = Message.objects.filter(answer=answer).order_by("-seq").first()
    assert stored.kind == "error" and stored.data["message"].startswith("This text was too large to show")
    assert len(json.dumps(stored.data)) < 200


def test_the_preview_of_an_upload_is_cut_the_same_way(user):
    from analyzer.tests.conftest import create_session

    long_text = "w" * 100_000
    session = create_session(user, "long.csv", "id,note\n" + "".join(f"{i},{long_text}\n" for i in range(3)))
    assert [row["id"] for row in session.preview] == [0, 1, 2]
    for row in session.preview:
        assert row["note"].endswith(f"{duck.TRUNCATED_MARKER}: 100,000 bytes in all]")
        assert len(row["note"]) < conf.RESULT_CELL_CHARS + 60
