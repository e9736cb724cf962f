"""The built-in analyst's answers, checked against pandas on the same file."""

import io

import pandas as pd
import pytest

from analyzer import services
from analyzer.models import Answer, Message
from analyzer.tests.conftest import SAMPLE_CSV, ask, run_pending_answers

pytestmark = pytest.mark.django_db


@pytest.fixture
def df():
    return pd.read_csv(io.StringIO(SAMPLE_CSV), parse_dates=["date"])


def kinds(messages):
    return [m.kind for m in messages]


def result_of(messages):
    results = [m for m in messages if m.kind == "query_result"]
    assert results, kinds(messages)
    assert not results[0].data["is_error"], results[0].data
    return results[0].data["result"]


def text_of(messages):
    return " ".join(m.data["text"] for m in messages if m.kind == "text")


def test_row_count(trades_session, user, df):
    messages = ask(trades_session, user, "How many rows are there?")
    assert kinds(messages)[0] == "user" and kinds(messages)[-1] == "done"
    assert result_of(messages) == [{"row_count": len(df)}]
    assert f"{len(df)} rows" in text_of(messages)


@pytest.mark.parametrize("question,agg", [
    ("sum of qty by symbol", "sum"),
    ("average price per symbol", "mean"),
    ("max qty by side", "max"),
    ("minimum price by symbol", "min"),
])
def test_aggregate_by_group(trades_session, user, df, question, agg):
    messages = ask(trades_session, user, question)
    rows = result_of(messages)
    measure = "qty" if "qty" in question else "price"
    group = "side" if "side" in question else "symbol"
    label = f"{ {'mean': 'avg'}.get(agg, agg)}_{measure}"
    expected = getattr(df.groupby(group)[measure], agg)()
    assert {r[group]: r[label] for r in rows} == pytest.approx(expected.to_dict())
    assert [r[label] for r in rows] == sorted((r[label] for r in rows), reverse=True)
    plot = next(m for m in messages if m.kind == "plot")
    assert plot.data["vega_lite_spec"]["mark"]["type"] == "bar"
    assert len(plot.data["vega_lite_spec"]["data"]["values"]) == len(expected)


def test_count_by_group(trades_session, user, df):
    rows = result_of(ask(trades_session, user, "count by symbol"))
    assert {r["symbol"]: r["count"] for r in rows} == df["symbol"].value_counts().to_dict()


def test_single_aggregate(trades_session, user, df):
    messages = ask(trades_session, user, "What is the total qty?")
    assert result_of(messages) == [{"sum_qty": int(df["qty"].sum())}]
    assert f"The total of qty is {int(df['qty'].sum())}" in text_of(messages)


def test_top_n_rows_by_column(trades_session, user, df):
    rows = result_of(ask(trades_session, user, "top 3 by price"))
    assert [r["price"] for r in rows] == df.nlargest(3, "price")["price"].tolist()


def test_bottom_n_rows(trades_session, user, df):
    rows = result_of(ask(trades_session, user, "lowest 2 qty"))
    assert [r["qty"] for r in rows] == df.nsmallest(2, "qty")["qty"].tolist()


def test_top_n_groups_by_total(trades_session, user, df):
    rows = result_of(ask(trades_session, user, "top 2 symbols by total qty"))
    expected = df.groupby("symbol")["qty"].sum().nlargest(2)
    assert [(r["symbol"], r["sum_qty"]) for r in rows] == list(expected.items())


def test_correlation(trades_session, user, df):
    messages = ask(trades_session, user, "correlation between qty and price")
    rows = result_of(messages)
    assert rows[0]["correlation"] == pytest.approx(df["qty"].corr(df["price"]))
    assert rows[0]["pairs"] == len(df)
    assert "Pearson correlation between qty and price" in text_of(messages)
    assert any(m.kind == "plot" and m.data["vega_lite_spec"]["mark"]["type"] == "point" for m in messages)


def test_distribution_numeric(trades_session, user, df):
    messages = ask(trades_session, user, "distribution of price")
    rows = result_of(messages)
    assert sum(r["count"] for r in rows) == len(df)
    assert rows[0]["bin_start"] == pytest.approx(df["price"].min())
    assert rows[-1]["bin_end"] == pytest.approx(df["price"].max())
    # Each bin holds the rows pandas puts in the same equal-width range.
    for r in rows:
        upper = df["price"] <= r["bin_end"] if r is rows[-1] else df["price"] < r["bin_end"]
        assert r["count"] == int(((df["price"] >= r["bin_start"] - 1e-9) & upper).sum())


def test_distribution_text(trades_session, user, df):
    rows = result_of(ask(trades_session, user, "distribution of side"))
    assert {r["side"]: r["count"] for r in rows} == df["side"].value_counts().to_dict()


def test_over_time(trades_session, user, df):
    messages = ask(trades_session, user, "qty over time by month")
    rows = result_of(messages)
    expected = df.groupby(df["date"].dt.to_period("M"))["qty"].sum()
    assert [r["sum_qty"] for r in rows] == expected.tolist()
    assert [r["period"][:7] for r in rows] == [str(p) for p in expected.index]
    assert any(m.kind == "plot" and m.data["vega_lite_spec"]["mark"]["type"] == "line" for m in messages)


def test_describe_column(trades_session, user, df):
    messages = ask(trades_session, user, "describe price")
    row = result_of(messages)[0]
    assert row["mean"] == pytest.approx(df["price"].mean())
    assert row["median"] == pytest.approx(df["price"].median())
    assert row["std"] == pytest.approx(df["price"].std())
    assert (row["min"], row["max"], row["distinct_values"]) == (df["price"].min(), df["price"].max(),
                                                               df["price"].nunique())


def test_raw_sql(trades_session, user, df):
    rows = result_of(ask(trades_session, user, "SELECT side, count(*) AS n FROM data GROUP BY side ORDER BY side"))
    assert rows == [{"side": k, "n": v} for k, v in sorted(df["side"].value_counts().items())]


def test_raw_sql_refused_is_shown_as_error(trades_session, user):
    messages = ask(trades_session, user, "select * from read_csv('/etc/passwd')")
    result = next(m for m in messages if m.kind == "query_result")
    assert result.data["is_error"] and "Refused" in result.data["error"]
    assert kinds(messages)[-1] == "done"


def test_unknown_question_says_llm_needed(trades_session, user):
    messages = ask(trades_session, user, "Why did the market go up in February?")
    assert "LLM provider is needed" in text_of(messages)
    assert kinds(messages)[-1] == "done"


def test_title_generated_after_first_exchange(trades_session, user):
    messages = ask(trades_session, user, "sum of qty by symbol")
    update = next(m for m in messages if m.kind == "session_update")
    trades_session.refresh_from_db()
    assert trades_session.title == update.data["title"] == "Sum of qty by symbol — trades.csv"
    assert trades_session.title_generated
    second = ask(trades_session, user, "How many rows are there?")
    assert "session_update" not in kinds(second)


def test_auto_analysis_overview_and_charts(user):
    from analyzer.tests.conftest import process, upload_of

    session = services.session_create_from_upload(owner=user, upload=upload_of("trades.csv", SAMPLE_CSV))
    # The auto-analysis is queued by the processing job, once the file is ready.
    assert not Answer.objects.filter(session=session).exists()
    session = process(session)
    assert Answer.objects.filter(session=session, mode="auto_analyze", status="queued").exists()
    run_pending_answers()
    messages = list(Message.objects.filter(session=session).order_by("seq"))
    assert messages[0].kind == "status" and messages[-1].kind == "done"
    assert "trades.csv has 10 rows and 5 columns" in messages[1].data["text"]
    plots = [m for m in messages if m.kind == "plot"]
    assert [p.data["title"] for p in plots] == ["Distribution of qty", "Rows per symbol", "Total qty per day"]
    assert Answer.objects.get(session=session).status == "succeeded"


def test_answer_refused_while_another_runs(trades_session, user):
    from django.core.exceptions import ValidationError

    services.answer_request(session=trades_session, user=user, text="How many rows are there?")
    with pytest.raises(ValidationError, match="still running"):
        services.answer_request(session=trades_session, user=user, text="again")


def test_empty_and_too_long_questions_refused(trades_session, user):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Type a question"):
        services.answer_request(session=trades_session, user=user, text="   ")
    with pytest.raises(ValidationError, match="too long"):
        services.answer_request(session=trades_session, user=user, text="x" * 5000)
