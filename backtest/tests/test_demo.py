import io
import time

import pytest

from backtest import demo
from backtest.models import Instrument, PriceBar


@pytest.mark.django_db
def test_demo_is_idempotent_and_bounded():
    out = io.StringIO()
    t0 = time.monotonic()
    demo.ensure_demo(stdout=out)
    first = time.monotonic() - t0
    counts = (Instrument.objects.count(), PriceBar.objects.count())
    demo.ensure_demo(stdout=io.StringIO())
    assert (Instrument.objects.count(), PriceBar.objects.count()) == counts
    assert counts[0] == len(demo.DEMO) and counts[1] > 50_000
    assert Instrument.objects.get(symbol="NOKIA").exchange == "OMXH"
    print(f"\ndemo data: {counts[1]} bars in {first:.1f} s")
