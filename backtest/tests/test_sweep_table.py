"""The sweep page's results table: every result, sorted and paged in the database (`?sort=&dir=&page=`), with
links that work without JavaScript and an HTMX fragment of the same template; odd query strings never 500."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backtest import selectors, services
from backtest.models import SweepResult

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def sweep(sync_jobs, user, btc):
    """A real sweep of 4 results, and more results of the same sweep so the table has several pages."""
    sweep = services.sweep_create(owner=user, instruments=[btc], interval="1h", strategy="sma_cross",
                                  grid={"fast": [5, 10], "slow": [30, 60]})
    sync_jobs.commit()
    assert sweep.results.count() == 4
    return sweep


def add_results(sweep, n: int):
    """`n` more results with known values: sharpe = seq / 10 (so the order is known), one without a sharpe."""
    start = sweep.results.count()
    instrument = sweep.results.first().instrument
    rows = []
    for seq in range(start + 1, start + n + 1):
        metrics = {"sharpe": seq / 10, "return_pct": -seq, "trades": seq % 7}
        if seq == start + 1:
            metrics = {"return_pct": 0.0, "trades": 0}
        rows.append(SweepResult(sweep=sweep, seq=seq, instrument=instrument,
                                params={"fast": seq % 13, "slow": 100 + seq}, metrics=metrics))
    SweepResult.objects.bulk_create(rows)


def seqs(response) -> list[int]:
    return [row.seq for row in response.context["page"]]


def test_default_is_best_sharpe_first_fifty_a_page(browser, sweep):
    add_results(sweep, 120)
    response = browser.get(sweep.get_absolute_url())
    assert response.status_code == 200
    shown = seqs(response)
    assert len(shown) == 50 and shown[:3] == [124, 123, 122]
    page = response.context["page"]
    assert page.paginator.count == 124 and page.paginator.num_pages == 3
    body = response.content.decode()
    # Links that work without JavaScript, with HTMX beside them.
    assert 'href="?sort=sharpe&amp;dir=desc&amp;page=2"' in body and 'hx-get="?sort=sharpe&amp;dir=desc&amp;page=2"' in body
    assert 'aria-sort="descending"' in body
    # The result without a Sharpe is last, in both directions.
    last = browser.get(sweep.get_absolute_url(), {"page": 3})
    assert seqs(last)[-1] == 5
    ascending = browser.get(sweep.get_absolute_url(), {"sort": "sharpe", "dir": "asc", "page": 3})
    assert seqs(ascending)[-1] == 5


def test_sort_by_a_metric_a_parameter_the_instrument_or_the_number(browser, sweep):
    add_results(sweep, 60)
    by_return = seqs(browser.get(sweep.get_absolute_url(), {"sort": "return_pct", "dir": "asc"}))
    assert by_return[:2] == [64, 63]
    rows = selectors.sweep_results_ordered(sweep=sweep, sort="slow", descending=True)
    assert [r.params["slow"] for r in rows[:3]] == [164, 163, 162]
    by_seq = seqs(browser.get(sweep.get_absolute_url(), {"sort": "seq", "dir": "asc", "page": 2}))
    assert by_seq == list(range(51, 65))
    by_instrument = browser.get(sweep.get_absolute_url(), {"sort": "instrument"})
    assert by_instrument.context["dir"] == "asc" and seqs(by_instrument)[:3] == [1, 2, 3]
    # A click on the sorted column's header turns its order.
    body = browser.get(sweep.get_absolute_url(), {"sort": "slow", "dir": "asc"}).content.decode()
    assert 'href="?sort=slow&amp;dir=desc"' in body and 'href="?sort=sharpe&amp;dir=desc"' in body


def test_htmx_gets_the_results_fragment_of_the_same_template(browser, sweep):
    add_results(sweep, 60)
    response = browser.get(sweep.get_absolute_url(), {"sort": "trades", "dir": "desc", "page": 2},
                           HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="results-table" data-sort="trades" data-dir="desc" data-page="2"')
    assert "<h1>" not in body and "sweep-live" not in body and body.count('data-testid="open-result"') == 14


@pytest.mark.parametrize("query", [
    {"sort": "nope"}, {"sort": "metrics') --"}, {"sort": "__class__"}, {"dir": "sideways"}, {"page": "-1"},
    {"page": "abc"}, {"page": "0"}, {"page": "99999999999999999999999"}, {"page": "1e9"}, {"sort": "\x00"},
    {"sort": "sharpe", "dir": "asc", "page": "NaN"}, {"sort": "x" * 5000},
])
def test_hostile_query_strings_get_a_page_never_a_500(browser, sweep, query):
    add_results(sweep, 60)
    response = browser.get(sweep.get_absolute_url(), query)
    assert response.status_code == 200, query
    assert len(seqs(response)) in (50, 14)
    if "sort" in query and query["sort"] != "sharpe":
        assert response.context["sort"] == "sharpe"  # an unknown column is the default order


def test_other_users_get_404_on_the_table_and_its_fragment(client, other_user, sweep):
    client.force_login(other_user)
    assert client.get(sweep.get_absolute_url(), {"sort": "sharpe"}).status_code == 404
    assert client.get(sweep.get_absolute_url(), {"page": 2}, HTTP_HX_REQUEST="true").status_code == 404


def test_the_table_reads_as_many_queries_for_10_pages_of_results_as_for_one(browser, sweep):
    url = sweep.get_absolute_url()

    def count(**query) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert browser.get(url, query, HTTP_HX_REQUEST="true").status_code == 200
        return len(ctx.captured_queries)

    few = count(sort="slow")
    add_results(sweep, 500)
    assert count(sort="slow") == few
    assert count(sort="sharpe", page=5) == few


def test_the_api_orders_in_the_database_too(auth_client, user, sweep):
    add_results(sweep, 30)
    body = auth_client(user).get(f"/api/backtest/sweeps/{sweep.pk}/", {"sort": "sharpe", "limit": 3}).json()
    assert [r["seq"] for r in body["results"]] == [34, 33, 32]


def test_heatmap_cells_name_the_result_that_gave_their_value(browser, sweep):
    cells = selectors.sweep_heatmap(sweep=sweep, x="fast", y="slow", metric="sharpe")
    assert len(cells) == 4
    for cell in cells:
        result = sweep.results.get(seq=cell["result_seq"])
        assert cell["sharpe"] == result.metrics["sharpe"]
        assert cell["result_params"].startswith(f"fast {result.params['fast']} · slow {result.params['slow']}")
        assert "True" not in cell["result_params"] and "False" not in cell["result_params"]
        assert cell["result_instrument"] == "BTCUSDT"
    response = browser.get(f"/backtest/sweeps/{sweep.pk}/heatmap/", {"x": "fast", "y": "slow", "metric": "sharpe"})
    body = response.content.decode()
    # The page opens a cell's result through a POST form with a CSRF token; the spec holds no link.
    assert f'data-action-template="/backtest/sweeps/{sweep.pk}/results/{{seq}}/open/"' in body
    assert "csrfmiddlewaretoken" in body and "href" not in body.split('id="spec-heatmap"')[1]
