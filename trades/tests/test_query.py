"""Filters, sort and aggregation checked against an independent computation in pandas."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from django.db import connection

from trades import selectors
from trades.params import BUCKETS_NS, ExportParams, day_start_ns


def run(params: ExportParams) -> pd.DataFrame:
    select = selectors.export_select(params=params)
    with connection.cursor() as cursor:
        cursor.execute(select.sql, select.params)
        rows = cursor.fetchall()
    return pd.DataFrame(rows, columns=select.columns)


def filtered(frame: pd.DataFrame, p: ExportParams) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    if p.exchanges:
        mask &= frame["exchange_id"].isin(p.exchanges)
    if p.tickers:
        mask &= frame["ticker"].isin(p.tickers)
    if p.pricelow is not None:
        mask &= frame["price"] >= p.pricelow
    if p.pricehigh is not None:
        mask &= frame["price"] <= p.pricehigh
    if p.sizelow is not None:
        mask &= frame["size"] >= p.sizelow
    if p.sizehigh is not None:
        mask &= frame["size"] <= p.sizehigh
    if p.datelow:
        mask &= frame["participant_timestamp"] >= day_start_ns(p.datelow)
    if p.datehigh:
        mask &= frame["participant_timestamp"] < day_start_ns(p.datehigh) + 86_400_000_000_000
    return frame[mask].copy()


def some_day(frame) -> date:
    stamps = pd.to_datetime(frame["participant_timestamp"], unit="ns", utc=True).dt.date
    return sorted(stamps.unique())


def test_filters_and_sorts_match_pandas(trades_frame):
    days = some_day(trades_frame)
    tickers = sorted(trades_frame["ticker"].unique())[:2]
    exchanges = (10, 12)
    price_low, price_high = trades_frame["price"].quantile([0.1, 0.9]).tolist()
    base = dict(exchanges=exchanges, tickers=tuple(tickers), pricelow=price_low, pricehigh=price_high,
                sizelow=10, sizehigh=2000, datelow=days[0], datehigh=days[1])
    expected_all = filtered(trades_frame, ExportParams(**base))
    assert 20 < len(expected_all) < len(trades_frame)
    for sortby, column, ascending in [
        ("time_desc", "participant_timestamp", False), ("time_asc", "participant_timestamp", True),
        ("size_asc", "size", True), ("size_desc", "size", False),
        ("price_asc", "price", True), ("price_desc", "price", False),
    ]:
        params = ExportParams(**base, sortby=sortby)
        got = run(params)
        expected = expected_all.sort_values([column, "id"], ascending=ascending)
        assert got["participant_timestamp"].tolist() == expected["participant_timestamp"].tolist(), sortby
        assert got["price"].tolist() == expected["price"].tolist()
        assert got["exchange"].tolist() == expected["exchange_id"].tolist()
        assert got["ticker"].tolist() == expected["ticker"].tolist()


def test_end_date_covers_the_whole_day(trades_frame):
    days = some_day(trades_frame)
    got = run(ExportParams(datelow=days[-1], datehigh=days[-1]))
    expected = filtered(trades_frame, ExportParams(datelow=days[-1], datehigh=days[-1]))
    assert len(got) == len(expected) > 0
    last_of_day = trades_frame[trades_frame["participant_timestamp"] < day_start_ns(days[-1]) + 86_400_000_000_000][
        "participant_timestamp"].max()
    assert last_of_day in set(got["participant_timestamp"])


def test_expression_columns_match_pandas(trades_frame):
    params = ExportParams(exchanges=(12,), operations=("PRICE*SIZE", "SIZE/(PRICE-PRICE)", "(PRICE+1)^2"),
                          sortby="time_asc")
    got = run(params)
    exp = filtered(trades_frame, params).sort_values(["participant_timestamp", "id"])
    assert list(got.columns[-3:]) == ["PRICE*SIZE", "SIZE/(PRICE-PRICE)", "(PRICE+1)^2"]
    np.testing.assert_allclose(got["PRICE*SIZE"].astype(float), (exp["price"] * exp["size"]).to_numpy(), rtol=1e-12)
    assert got["SIZE/(PRICE-PRICE)"].isna().all()  # division by zero: empty, not an error
    np.testing.assert_allclose(got["(PRICE+1)^2"].astype(float), ((exp["price"] + 1) ** 2).to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("bucket", ["ns", "s", "min", "hr", "day"])
@pytest.mark.parametrize("fn", ["sum", "avg", "min", "max"])
def test_aggregation_matches_pandas(trades_frame, bucket, fn):
    params = ExportParams(exchanges=(10, 11, 12, 4), operations=("PRICE*SIZE", "SIZE/2"), aggregateby=bucket,
                          sortby=None, aggregate_fn=fn)
    got = run(params)
    frame = filtered(trades_frame, params)
    frame["bucket"] = (frame["participant_timestamp"] // BUCKETS_NS[bucket]) * BUCKETS_NS[bucket]
    frame["e0"] = frame["price"] * frame["size"]
    frame["e1"] = frame["size"] / 2
    frame = frame.sort_values(["participant_timestamp", "id"])
    pandas_fn = {"sum": "sum", "avg": "mean", "min": "min", "max": "max"}[fn]
    expected = (
        frame.groupby(["bucket", "ticker"], sort=True)
        .agg(trade_count=("price", "size"), open=("price", "first"), high=("price", "max"), low=("price", "min"),
             close=("price", "last"), total_size=("size", "sum"), e0=("e0", pandas_fn), e1=("e1", pandas_fn))
        .reset_index()
    )
    assert got.columns.tolist() == ["bucket_start", "ticker", "trade_count", "open", "high", "low", "close",
                                    "total_size", f"{fn}(PRICE*SIZE)", f"{fn}(SIZE/2)"]
    assert got["bucket_start"].tolist() == expected["bucket"].tolist()
    assert got["ticker"].tolist() == expected["ticker"].tolist()
    assert got["trade_count"].tolist() == expected["trade_count"].tolist()
    assert got["total_size"].tolist() == expected["total_size"].tolist()
    for column in ["open", "high", "low", "close"]:
        assert got[column].tolist() == expected[column].tolist(), column
    np.testing.assert_allclose(got[f"{fn}(PRICE*SIZE)"].astype(float), expected["e0"], rtol=1e-9)
    np.testing.assert_allclose(got[f"{fn}(SIZE/2)"].astype(float), expected["e1"], rtol=1e-9)


@pytest.mark.parametrize("params", [
    ExportParams(sortby="price_desc"),
    ExportParams(sortby="time_asc", exchanges=(12, 10)),
    ExportParams(aggregateby="min", sortby=None, operations=("PRICE",)),
])
def test_preview_keyset_pages_walk_the_whole_output(trades_data, params):
    everything = run(params).to_numpy().tolist()
    seen, cursor, pages = [], None, 0
    while True:
        page = selectors.export_preview(params=params, cursor=cursor, rows=400)
        seen.extend(page["rows"])
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages > 1
    assert len(seen) == len(everything)
    assert [r[:3] for r in seen] == [r[:3] for r in everything]
    assert page["estimated_rows"] == len(everything)


PREVIEW_QUERIES = 2  # the page (keyset) and the estimate


def test_preview_never_uses_offset(trades_data, django_assert_max_num_queries):
    captured = []
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(conn) as ctx:
        with django_assert_max_num_queries(PREVIEW_QUERIES):  # a page costs the same, however deep
            page = selectors.export_preview(params=ExportParams(), rows=50)
        with django_assert_max_num_queries(PREVIEW_QUERIES):
            selectors.export_preview(params=ExportParams(), cursor=page["next_cursor"], rows=50)
    captured = [q["sql"].upper() for q in ctx.captured_queries]
    assert captured and not any("OFFSET" in q for q in captured)


def test_bad_cursor_is_a_clear_error(trades_data):
    with pytest.raises(selectors.CursorError):
        selectors.export_preview(params=ExportParams(), cursor="not-a-cursor")
    with pytest.raises(selectors.CursorError):
        selectors.export_preview(params=ExportParams(aggregateby="s", sortby=None),
                                 cursor=selectors.encode_cursor([1, 2]))


def test_estimate_is_capped(trades_data):
    count, capped = selectors.export_estimate(params=ExportParams(), cap=100)
    assert (count, capped) == (100, True)
    assert selectors.export_estimate(params=ExportParams(), cap=10_000) == (3000, False)
