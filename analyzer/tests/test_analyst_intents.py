"""The built-in analyst's reading of questions: follow-ups, asking back, the chart it picks, the SQL it shows."""

from pathlib import Path

import pandas as pd
import pytest

from analyzer.tests.conftest import ask, create_session

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "eval" / "data"
MASS = "Body Mass (g)"


@pytest.fixture
def penguins(user):
    return create_session(user, "penguins.csv", (DATA / "penguins.csv").read_bytes())


@pytest.fixture
def df():
    return pd.read_csv(DATA / "penguins.csv")


def first_rows(messages):
    result = next(m for m in messages if m.kind == "query_result")
    assert not result.data["is_error"], result.data
    return result.data["result"]


def marks(messages):
    return [m.data["vega_lite_spec"]["mark"]["type"] for m in messages if m.kind == "plot"]


def texts(messages):
    return " ".join(m.data["text"] for m in messages if m.kind == "text")


def test_follow_ups_regroup_and_filter_the_question_before(penguins, user, df):
    rows = first_rows(ask(penguins, user, "average body mass by species"))
    assert {r["Species"]: r[f"avg_{MASS}"] for r in rows} == pytest.approx(df.groupby("Species")[MASS].mean().to_dict())
    rows = first_rows(ask(penguins, user, "and by island?"))
    assert {r["Island"]: r[f"avg_{MASS}"] for r in rows} == pytest.approx(df.groupby("Island")[MASS].mean().to_dict())
    messages = ask(penguins, user, "only females")
    expected = df[df["Sex"] == "FEMALE"].groupby("Island")[MASS].mean()
    assert {r["Island"]: r[f"avg_{MASS}"] for r in first_rows(messages)} == pytest.approx(expected.to_dict())
    assert "\"Sex\" = 'FEMALE'" in next(m for m in messages if m.kind == "query_result").data["sql"]


def test_as_a_chart_draws_the_previous_answer(penguins, user):
    assert marks(ask(penguins, user, "list the different islands")) == []
    assert marks(ask(penguins, user, "as a bar chart")) == ["bar"]


def test_ambiguous_column_is_asked_back_with_candidates(penguins, user):
    messages = ask(penguins, user, "what is the average length?")
    assert not [m for m in messages if m.kind in ("query_result", "plot")]
    assert "Beak Length (mm)" in texts(messages) and "Flipper Length (mm)" in texts(messages)
    # The answer to the question back completes the question.
    rows = first_rows(ask(penguins, user, "flipper"))
    assert list(rows[0].values()) == pytest.approx([pd.read_csv(DATA / "penguins.csv")["Flipper Length (mm)"].mean()])


def test_unknown_column_is_asked_back_not_answered(penguins, user):
    messages = ask(penguins, user, "what's the average price?")
    assert not [m for m in messages if m.kind in ("query_result", "plot")]
    assert "price" in texts(messages)


def test_text_column_has_no_average(penguins, user):
    messages = ask(penguins, user, "average island")
    assert not [m for m in messages if m.kind in ("query_result", "plot")]
    assert "Island is not a numeric column" in texts(messages)


@pytest.mark.parametrize("question,mark", [
    ("number of penguins per island", "bar"),
    ("scatter plot of flipper length against body mass", "point"),
    ("histogram of beak depth", "bar"),
])
def test_marks_follow_the_question(penguins, user, question, mark):
    messages = ask(penguins, user, question)
    assert marks(messages)[-1] == mark
    plot = [m for m in messages if m.kind == "plot"][-1]
    assert plot.data["sql"], "every chart shows the SQL it ran"
    if question.startswith("histogram"):
        assert plot.data["vega_lite_spec"]["encoding"]["x"]["bin"] == {"binned": True}


def test_time_gets_a_line_and_integer_years_are_time(user):
    content = (DATA / "disasters.csv").read_bytes()
    session = create_session(user, "disasters.csv", content)
    df = pd.read_csv(DATA / "disasters.csv")
    messages = ask(session, user, "total deaths from floods per year")
    assert marks(messages) == ["line"]
    expected = df[df["Entity"] == "Flood"].groupby("Year")["Deaths"].sum()
    assert {r["period"]: r["sum_Deaths"] for r in first_rows(messages)} == expected.to_dict()


def test_every_answer_shows_its_sql(penguins, user):
    for question in ["How many female penguins weigh more than 4000 g?", "which species has the heaviest penguins",
                     "missing values per column", "what percentage of penguins are male?"]:
        results = [m for m in ask(penguins, user, question) if m.kind == "query_result"]
        assert results and all(r.data["sql"].lstrip().upper().startswith(("SELECT", "WITH")) for r in results)
