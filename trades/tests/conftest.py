import pytest


@pytest.fixture
def trades_data(db):
    """A small deterministic market: 4 tickers, 3 trading days, 3000 trades, through the real loader."""
    from trades.loading import trades_generate

    trades_generate(tickers=4, days=3, rows=3000, seed=11)


@pytest.fixture
def trades_frame(trades_data):
    import pandas as pd

    from trades.models import Trade

    return pd.DataFrame.from_records(
        Trade.objects.values("id", "ticker", "exchange_id", "participant_timestamp", "price", "size", "del_t", "del_p")
    )
