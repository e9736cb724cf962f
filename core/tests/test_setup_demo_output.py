"""`make run`'s demo step tells what it does: one line per app, and the queued jobs counted, not ~100
"Enqueued" log lines from django-q2."""

import io
import logging

import pytest
from django.core.management import call_command

from etl.models import FetchJob


@pytest.mark.django_db(transaction=True)
def test_setup_demo_counts_the_jobs_it_queues_instead_of_logging_each(settings, tmp_path, root_user, caplog):
    settings.ETL_DEMO_SOURCE_ROOT = str(tmp_path / "pos-share")
    settings.PLATFORM_MEDIA_ROOT = settings.MEDIA_ROOT = str(tmp_path / "media")
    out = io.StringIO()
    with caplog.at_level(logging.INFO):
        call_command("setup_demo", "--skip", "trades", "scripts_runner", "analyzer", "backtest", stdout=out)
    # The ETL demo queues its days for the worker (one task each, on whichever broker is configured).
    queued = FetchJob.objects.filter(status="queued").count()
    assert queued > 10
    text = out.getvalue()
    assert "demo data for etl: loading …" in text
    assert f"; {queued} background job(s) queued for the worker)" in text, text
    assert not [r for r in caplog.records if r.getMessage().startswith("Enqueued")]
    # Other django-q2 messages still reach the log, and the filter is gone once the command ends.
    logging.getLogger("django-q").info("Enqueued after the demo")
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("Enqueued")] == [
        "Enqueued after the demo"]
