"""The built-in analyst over four public datasets: at least 85 % right, at most 5 % wrong (truths from pandas).

Each dataset is uploaded and processed through the services, its questions asked in order in one session
(follow-ups read the question before them) and run the way the worker runs them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analyzer.tests.conftest import ask, create_session
from analyzer.tests.eval.questions import DATASETS
from analyzer.tests.eval.scoring import ASKED, RIGHT, WRONG, score

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "eval" / "data"


def test_builtin_analyst_answers_everyday_questions(user):
    outcomes: list[tuple[str, str, str]] = []
    for filename, questions_of in DATASETS.items():
        content = (DATA / filename).read_bytes()
        df = pd.read_csv(DATA / filename)
        session = create_session(user, filename, content)
        questions = questions_of(df)
        assert len(questions) >= 15
        for text, check, truth in questions:
            expected = truth(df) if truth is not None else None
            outcomes.append((filename, text, score(ask(session, user, text), check, expected)))
    counts = {k: sum(1 for o in outcomes if o[2] == k) for k in (RIGHT, WRONG, ASKED)}
    total = len(outcomes)
    for filename, text, outcome in outcomes:
        if outcome != RIGHT:
            print(f"  {outcome:>10}: {filename}: {text}")
    print(f"\nbuilt-in analyst: {counts[RIGHT]}/{total} right ({counts[RIGHT] / total:.0%}), "
          f"{counts[WRONG]} wrong ({counts[WRONG] / total:.0%}), {counts[ASKED]} asked back "
          f"({counts[ASKED] / total:.0%})")
    assert counts[RIGHT] >= 0.85 * total, outcomes
    assert counts[WRONG] <= 0.05 * total, outcomes
