import io

import pytest
from django.db.models import Count

from backtest import demo
from backtest.models import Instrument, PriceBar


@pytest.mark.django_db
def test_demo_is_idempotent_and_bounded():
    demo.demo_ensure(stdout=io.StringIO())
    counts = (Instrument.objects.count(), PriceBar.objects.count())
    again = io.StringIO()
    demo.demo_ensure(stdout=again)
    assert (Instrument.objects.count(), PriceBar.objects.count()) == counts
    assert again.getvalue() == ""  # nothing generated the second time
    assert counts[0] == len(demo.DEMO) and counts[1] > 50_000
    # Bounded: every series holds exactly the bars the demo declares, no more.
    declared = {(symbol, interval): bars for symbol, *_rest, intervals in demo.DEMO for interval, bars in intervals.items()}
    stored = {(row["instrument__symbol"], row["interval"]): row["n"] for row in
              PriceBar.objects.values("instrument__symbol", "interval").annotate(n=Count("id"))}
    assert stored == declared and counts[1] == sum(declared.values())
    assert Instrument.objects.get(symbol="NOKIA").exchange == "OMXH"
