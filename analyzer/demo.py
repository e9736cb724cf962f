"""Demo data for `make run` (called by `manage.py setup_demo`): one analyzed sample file for the root account."""

from __future__ import annotations

import io
import random
from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from analyzer import services
from analyzer.models import AnalysisSession

DEMO_FILENAME = "demo-trades.csv"


def demo_csv(rows: int = 2000) -> bytes:
    rng = random.Random(11)
    start = date(2024, 1, 1)
    out = io.StringIO()
    out.write("date,symbol,side,qty,price,venue\n")
    prices = {"AAPL": 185.0, "MSFT": 370.0, "GOOG": 140.0, "TSLA": 240.0, "AMZN": 150.0}
    for i in range(rows):
        symbol = rng.choice(list(prices))
        prices[symbol] *= 1 + rng.gauss(0, 0.004)
        out.write(f"{start + timedelta(days=i * 180 // rows)},{symbol},{rng.choice(['buy', 'sell'])},"
                  f"{rng.randint(1, 200)},{prices[symbol]:.2f},{rng.choice(['XNAS', 'ARCX', 'BATS'])}\n")
    return out.getvalue().encode()


def demo_ensure(*, stdout) -> None:
    owner = get_user_model().objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if owner is None:
        stdout.write("analyzer: no root account yet, no demo session\n")
        return
    if AnalysisSession.objects.filter(owner=owner, filename=DEMO_FILENAME).exists():
        stdout.write("analyzer: demo session present\n")
        return
    # Processed like any upload: the worker loads the file, then runs the auto-analysis.
    session = services.session_create_from_upload(
        owner=owner, upload=SimpleUploadedFile(DEMO_FILENAME, demo_csv(), content_type="text/csv"))
    stdout.write(f"analyzer: demo session #{session.pk} created for {owner.username} (processing queued)\n")
