"""The column profile and the auto-analysis the built-in analyst draws from it."""

from pathlib import Path

import pandas as pd
import pytest
from django.urls import reverse

from analyzer import conf
from analyzer.models import Message
from analyzer.tests.conftest import create_session, run_pending_answers

pytestmark = pytest.mark.django_db

PENGUINS = Path(__file__).parent / "eval" / "data" / "penguins.csv"


def test_distinct_counts_are_exact_on_small_files(user):
    df = pd.read_csv(PENGUINS, keep_default_na=False, na_values=[""])
    session = create_session(user, "penguins.csv", PENGUINS.read_bytes())
    profile = {p["name"]: p for p in session.profile}
    for name in df.columns:
        assert profile[name]["distinct"] == df[name].nunique(), name
        assert profile[name]["distinct_approximate"] is False
    # Every value of a small category is kept (most frequent first): the analyst matches questions to them.
    assert profile["Species"]["values"] == df["Species"].value_counts().index.tolist()


def test_distinct_counts_above_the_limit_are_approximate_and_marked(user, client, monkeypatch):
    monkeypatch.setattr(conf, "PROFILE_EXACT_DISTINCT_ROWS", 100)
    session = create_session(user, "penguins.csv", PENGUINS.read_bytes())
    assert all(p["distinct_approximate"] for p in session.profile)
    client.force_login(user)
    page = client.get(reverse("analyzer:session_detail", args=[session.pk])).content.decode()
    assert "≈ " in page


def test_auto_analysis_skips_ids_and_charts_measures_categories_and_time(user):
    rows = ["sample_id,day,store,units,price"]
    for i in range(1, 121):
        rows.append(f"{i},2024-{1 + i % 12:02d}-{1 + i % 27:02d},{'ABC'[i % 3]},{i % 17},{10 + i % 7}.5")
    session = create_session(user, "sales.csv", "\n".join(rows) + "\n", auto_analyze=True)
    run_pending_answers()
    plots = [m.data for m in Message.objects.filter(session=session, kind="plot").order_by("seq")]
    titles = [p["title"] for p in plots]
    assert titles == ["Distribution of units", "Rows per store", "Total units per week"], titles
    assert not any("sample_id" in p["sql"] for p in plots)
    marks = [p["vega_lite_spec"]["mark"]["type"] for p in plots]
    assert marks == ["bar", "bar", "line"]
