"""Demo data for `make run` (called by `manage.py setup_demo`): a modest trade set, once."""

from trades import conf
from trades.loading import exchanges_ensure, trades_generate
from trades.models import Trade


def demo_ensure(*, stdout) -> None:
    exchanges_ensure()
    if conf.DEMO_ROWS <= 0 or Trade.objects.exists():
        stdout.write("trades: demo data present\n")
        return
    stdout.write(f"trades: generating {conf.DEMO_ROWS:,} demo trades\n")
    trades_generate(tickers=8, days=10, rows=conf.DEMO_ROWS, seed=7)
