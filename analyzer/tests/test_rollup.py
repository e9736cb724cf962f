"""The summary table of a large session: made at load time, it gives the same numbers as scanning `data`."""

import math
import random

import pytest

from analyzer import conf, duck
from analyzer.agent.builtin import BuiltinProvider
from analyzer.agent.context import DataContext
from analyzer.services.sessions import session_data_path
from analyzer.tests.conftest import ask, create_session

QUESTIONS = [
    "how many rows have qty over 40 and side buy?",
    "average price by symbol",
    "and by venue?",
    "only sells",
    "total qty per venue",
    "which symbol has the highest total qty?",
    "what is the maximum price by venue?",
    "minimum qty by side",
    "what share of trades are buys?",
    "share of rows by venue",
    "distribution of price",
    "total qty per month",
    "number of trades per week",
    "average price by day of the week",
    "total qty by month of year",
    "correlation between qty and price",
    "scatter plot of qty vs price",
    "how many trades in 2024?",
    "average price per year",
]


def trades_csv(rows: int = 3000) -> str:
    rng = random.Random(7)
    lines = ["day,symbol,side,venue,qty,price"]
    for i in range(rows):
        price = "" if i % 97 == 0 else f"{rng.uniform(10, 500):.2f}"  # some missing prices
        lines.append(f"{2023 + i // 1500}-{1 + (i // 125) % 12:02d}-{1 + i % 28:02d},SYM{rng.randrange(12)},"
                     f"{rng.choice(['buy', 'sell'])},V{rng.randrange(4)},{rng.randrange(1, 60)},{price}")
    return "\n".join(lines) + "\n"


def same(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for row_a, row_b in zip(a, b):
        for x, y in zip(row_a, row_b):
            if isinstance(x, float) or isinstance(y, float):
                if not math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif x != y and str(x) != str(y):
                return False
    return True


@pytest.fixture
def big_session(user, settings):
    settings.ANALYZER_ROLLUP_MIN_ROWS = 1000
    return create_session(user, "trades.csv", trades_csv())


@pytest.mark.django_db
def test_answers_from_the_summary_equal_the_scan_of_the_data(big_session):
    rollup = big_session.detection["rollup"]
    assert rollup["table"] == "data_rollup" and {"symbol", "side", "venue", "qty", "day"} <= {
        k["name"] for k in rollup["keys"]}
    context = DataContext.for_session(big_session, data_path=session_data_path(session=big_session))
    con = duck.sandbox_connect(data_path=context.data_path)
    history: list[str] = []
    from_summary = 0
    for question in QUESTIONS:
        fast, slow = BuiltinProvider(context=context), BuiltinProvider(context=context)
        slow.schema.rollup = None
        fast_plan, slow_plan = fast.decide(question, history), slow.decide(question, history)
        history.append(question)
        fast_sql = [a["sql"] for n, a in fast_plan.calls if n in ("generate_query", "create_plot")]
        slow_sql = [a["sql"] for n, a in slow_plan.calls if n in ("generate_query", "create_plot")]
        assert len(fast_sql) == len(slow_sql) > 0, question
        for quick, scan in zip(fast_sql, slow_sql):
            assert "data_rollup" not in scan
            if "data_sample" in quick:  # a scatter's points: a sample either way, of the same columns
                assert con.execute(quick).description == con.execute(scan).description
                assert len(con.execute(quick).fetchall()) == len(con.execute(scan).fetchall()) == 2000
                continue
            from_summary += "data_rollup" in quick
            assert same(con.execute(quick).fetchall(), con.execute(scan).fetchall()), (question, quick)
    con.close()
    assert from_summary >= 15  # most of these questions are answered from the summary


@pytest.mark.django_db
def test_the_summary_is_what_the_user_sees_and_may_query(big_session, user):
    messages = ask(big_session, user, "average price by symbol")
    result = next(m for m in messages if m.kind == "query_result")
    assert "FROM data_rollup" in result.data["sql"] and len(result.data["result"]) == 12
    own = ask(big_session, user, "SELECT count(*) AS n FROM data_rollup WHERE _set = 0")
    assert next(m for m in own if m.kind == "query_result").data["result"] == [{"n": 0}]
    refused = ask(big_session, user, "SELECT * FROM duckdb_tables()")
    assert next(m for m in refused if m.kind == "query_result").data["is_error"]


@pytest.mark.django_db
def test_small_files_get_no_summary(trades_session):
    assert "rollup" not in trades_session.detection and conf.ROLLUP_MIN_ROWS == 1_000_000
