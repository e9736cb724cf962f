import io

import pytest

from analyzer import demo
from analyzer.models import AnalysisSession
from analyzer.tests.conftest import process

pytestmark = pytest.mark.django_db


def test_demo_is_idempotent(root_user):
    out = io.StringIO()
    demo.demo_ensure(stdout=out)
    demo.demo_ensure(stdout=out)
    session = process(AnalysisSession.objects.get())  # the worker processes the upload
    assert session.owner == root_user and session.row_count == 2000
    assert session.answers.filter(mode="auto_analyze").count() == 1
    assert "demo session present" in out.getvalue()


def test_demo_without_root_does_nothing():
    out = io.StringIO()
    demo.demo_ensure(stdout=out)
    assert not AnalysisSession.objects.exists() and "no root account" in out.getvalue()
