"""Untrusted SQL: only one SELECT over the session's own file; everything else is refused clearly."""

import threading
import time

import pytest
from django.core.files.storage import default_storage

from analyzer import duck, services
from analyzer.tests.conftest import SAMPLE_CSV, create_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_path(trades_session):
    return services.session_data_path(session=trades_session)


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "secret.csv"
    path.write_text("password\nhunter2\n")
    return path


def test_select_over_data_works(data_path):
    result = duck.query_run(data_path=data_path, sql="SELECT symbol, sum(qty) AS q FROM data GROUP BY 1 ORDER BY 2 DESC;")
    assert result.rows[0] == {"symbol": "TSLA", "q": 35}
    assert result.columns == [{"name": "symbol", "type": "VARCHAR"}, {"name": "q", "type": "HUGEINT"}]


def test_with_and_trailing_comment(data_path):
    result = duck.query_run(data_path=data_path, sql="WITH t AS (SELECT qty FROM data) SELECT max(qty) AS m FROM t -- biggest")
    assert result.rows == [{"m": 20}]


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('{secret}')",
    "SELECT * FROM '{secret}'",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('/tmp/*')",
    "SELECT * FROM read_parquet('{other}')",
])
def test_reading_other_files_is_refused(data_path, secret_file, user, sql):
    other = create_session(user, "other.csv", SAMPLE_CSV)
    sql = sql.format(secret=secret_file, other=default_storage.path(other.data_name))
    with pytest.raises((duck.QueryFailed, duck.QueryRefused)) as info:
        duck.query_run(data_path=data_path, sql=sql)
    message = str(info.value)
    assert "Refused" in message or "does not exist" in message
    assert "hunter2" not in message


@pytest.mark.parametrize("sql,why", [
    ("COPY data TO '/tmp/stolen.csv'", "COPY statement"),
    ("ATTACH '/tmp/evil.db' AS evil", "ATTACH statement"),
    ("INSTALL httpfs", "statement"),
    ("LOAD httpfs", "statement"),
    ("SET enable_external_access = true", "SET statement"),
    ("PRAGMA enable_profiling", "PRAGMA statement"),
    ("CREATE TABLE x AS SELECT * FROM data", "CREATE statement"),
    ("DROP VIEW data", "DROP statement"),
    ("SELECT 1; SELECT 2", "single statement"),
    ("", "empty"),
])
def test_non_select_statements_are_refused(data_path, sql, why):
    with pytest.raises(duck.QueryRefused, match=why):
        duck.query_run(data_path=data_path, sql=sql)


def test_writing_files_via_select_functions_is_refused(data_path, tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises((duck.QueryFailed, duck.QueryRefused)):
        duck.query_run(data_path=data_path, sql=f"SELECT * FROM data WHERE 0 = (SELECT count(*) FROM read_csv('{target}'))")
    assert not target.exists()


def test_settings_cannot_be_changed_or_read_secrets(data_path):
    # Settings are not readable at all: some of them (allowed_paths) name host paths.
    with pytest.raises(duck.QueryRefused, match="Refused"):
        duck.query_run(data_path=data_path, sql="SELECT current_setting('enable_external_access') AS v")
    with pytest.raises((duck.QueryFailed, duck.QueryRefused)):
        duck.query_run(data_path=data_path, sql="SELECT getenv('HOME')")


def test_syntax_errors_are_reported(data_path):
    with pytest.raises(duck.QueryFailed, match="syntax|Parser"):
        duck.query_run(data_path=data_path, sql="SELEC nope")
    with pytest.raises(duck.QueryFailed, match="nope"):
        duck.query_run(data_path=data_path, sql="SELECT nope FROM data")


def test_long_query_is_interrupted(data_path):
    started = time.monotonic()
    with pytest.raises(duck.QueryFailed, match="longer than 0.5 s"):
        duck.query_run(data_path=data_path, timeout=0.5,
                       sql="SELECT count(*) FROM range(100000000000) a")
    assert time.monotonic() - started < 10


def test_cancel_check_interrupts(data_path):
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(duck.QueryFailed, match="stopped"):
        duck.query_run(data_path=data_path, timeout=30, cancel_check=stop.is_set,
                       sql="SELECT count(*) FROM range(100000000000) a")


def test_memory_limit_applies(data_path, monkeypatch):
    from analyzer import conf

    monkeypatch.setattr(conf, "DUCKDB_MEMORY_LIMIT", "64MB")
    monkeypatch.setattr(conf, "DUCKDB_THREADS", 1)
    with pytest.raises(duck.QueryFailed, match="(?i)memory|Out of Memory"):
        duck.query_run(data_path=data_path, timeout=30,
                       sql="SELECT list(range) AS l FROM range(50000000) GROUP BY range % 3")


def test_duplicate_result_columns_are_kept(data_path):
    result = duck.query_run(data_path=data_path, sql="SELECT 1 AS a, 2 AS a")
    assert result.rows == [{"a": 1, "a_1": 2}]
