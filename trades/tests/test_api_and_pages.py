"""API and HTMX page behaviour: validation messages, never a 500, status codes."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(auth_client, user):
    return auth_client(user)


def test_lists(trades_data, api):
    exchanges = api.get("/api/trades/exchanges/").json()
    assert {"id": 12, "name": "Nasdaq", "acronym": "NASDAQ", "mic": "XNAS"} in exchanges
    assert api.get("/api/trades/tickers/").json()["tickers"] == ["AAPL", "MSFT", "NVDA", "AMZN"].__class__(
        sorted(["AAPL", "MSFT", "NVDA", "AMZN"]))


def test_expression_validate_is_200_for_valid_and_invalid(api):
    ok = api.post("/api/trades/expressions/validate/", {"expression": "price * size"}, format="json")
    assert ok.status_code == 200 and ok.json() == {"valid": True, "error": "", "position": None,
                                                   "normalized": "PRICE*SIZE"}
    bad = api.post("/api/trades/expressions/validate/", {"expression": "(PRICE + 1"}, format="json")
    assert bad.status_code == 200
    assert bad.json()["valid"] is False and bad.json()["position"] == 1
    assert bad.json()["error"] == "This '(' is never closed: add a ')' after what it holds (character 1)"
    for weird in [{"expression": None}, {"expression": 5}, {}, {"expression": ["x"]}]:
        response = api.post("/api/trades/expressions/validate/", weird, format="json")
        assert response.status_code == 200 and response.json()["valid"] is False


@pytest.mark.parametrize(
    ("payload", "field", "text"),
    [
        ({"pricelow": 10, "pricehigh": 5}, "pricehigh", "at least the minimum"),
        ({"sizelow": 10, "sizehigh": 5}, "sizehigh", "at least the minimum"),
        ({"pricelow": "abc"}, "pricelow", "number"),
        ({"pricelow": "NaN"}, "pricelow", "number"),
        ({"sizelow": 1.5}, "sizelow", "whole number"),
        ({"datelow": "2015-06-30"}, "datelow", "2015-07-01"),
        ({"datehigh": "2999-01-01"}, "datehigh", "future"),
        ({"datelow": "2024-02-03", "datehigh": "2024-02-01"}, "datehigh", "before the start"),
        ({"datelow": "yesterday"}, "datelow", "YYYY-MM-DD"),
        ({"operations": [{"expression": "PRIC*2"}]}, "operations", "'PRIC' is not a name here: write PRICE or SIZE (character 1)"),
        ({"operations": [{"expression": "1"}] * 6}, "operations", "more than 5"),
        ({"operations": "PRICE"}, "operations", "list"),
        ({"exchanges": [999]}, "exchanges", "Unknown exchange"),
        ({"exchanges": ["x"]}, "exchanges", "valid integer"),
        ({"tickers": ["no good!"]}, "tickers", "Not a ticker"),
        ({"sortby": "sideways"}, "sortby", "Choose one of"),
        ({"aggregateby": "week"}, "aggregateby", "not a valid choice"),
        ({"format": "xlsx"}, "format", "not a valid choice"),
    ],
)
def test_export_request_validation(trades_data, api, payload, field, text):
    for url in ("/api/trades/exports/", "/api/trades/preview/"):
        response = api.post(url, payload, format="json")
        assert response.status_code == 400, response.content
        messages = " ".join(str(m) for m in _flatten(response.json()[field]))
        assert text.lower() in messages.lower(), messages


def _flatten(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _flatten(v)
    elif isinstance(value, list):
        for v in value:
            yield from _flatten(v)
    else:
        yield value


def test_garbage_bodies_never_500(trades_data, api):
    for body in ["[]", '"x"', "{", '{"exchanges": {"a": 1}}', '{"pricelow": [1]}',
                 '{"operations": [{"expression": {"x": 1}}]}', '{"operations": [null]}']:
        for url in ("/api/trades/exports/", "/api/trades/preview/"):
            response = api.post(url, body, content_type="application/json")
            assert response.status_code == 400, (url, body, response.content)


def test_preview_api(trades_data, api):
    response = api.post("/api/trades/preview/", {"exchanges": [12], "sortby": "oldest"}, format="json")
    data = response.json()
    assert response.status_code == 200
    assert len(data["rows"]) == 50 and data["estimated_rows"] > 50 and data["next_cursor"]
    nxt = api.post("/api/trades/preview/", {"exchanges": [12], "sortby": "oldest", "cursor": data["next_cursor"]},
                   format="json").json()
    assert nxt["rows"][0][2] >= data["rows"][-1][2]
    assert api.post("/api/trades/preview/", {"cursor": "garbage"}, format="json").status_code == 400


@pytest.mark.django_db(transaction=True)
def test_export_api_202_then_200(trades_data, api, sync_jobs):
    payload = {"exchanges": [12, 10], "operations": [{"expression": "PRICE*SIZE"}], "aggregateby": "min",
               "aggregate_fn": "avg", "format": "csv"}
    first = api.post("/api/trades/exports/", payload, format="json")
    assert first.status_code == 202 and first.json()["outcome"] == "created"
    pk = first.json()["id"]
    detail = api.get(f"/api/trades/exports/{pk}/").json()
    assert detail["status"] == "succeeded" and detail["download_url"].endswith(f"/{pk}/download/")
    second = api.post("/api/trades/exports/", payload, format="json")
    assert second.status_code == 200 and second.json()["outcome"] == "existing" and second.json()["id"] == pk
    assert api.get("/api/trades/exports/latest/").json()["id"] == pk
    assert api.post(f"/api/trades/exports/{pk}/cancel/").status_code == 409
    download = api.get(f"/api/trades/exports/{pk}/download/")
    header = b"".join(download.streaming_content).split(b"\n")[0]
    assert header == b"bucket_start,ticker,trade_count,open,high,low,close,total_size,avg(PRICE*SIZE)"


def test_latest_without_exports(api):
    response = api.get("/api/trades/exports/latest/")
    assert response.status_code == 404 and response.json()["detail"] == "You have no finished export yet."


def test_cancel_api_queued(trades_data, api):
    pk = api.post("/api/trades/exports/", {"exchanges": [12]}, format="json").json()["id"]
    response = api.post(f"/api/trades/exports/{pk}/cancel/")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"


# --- pages ---------------------------------------------------------------------------------


@pytest.fixture
def page(client, user):
    client.force_login(user)
    return client


def test_index_page(trades_data, page):
    response = page.get("/trades/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'min="2015-07-01"' in html and "NASDAQ" in html and "AAPL" in html


def test_expression_check_fragment(page):
    bad = page.post("/trades/expression/check/", {"expression": "PRICE +* 2"}, HTTP_HX_REQUEST="true").content.decode()
    assert "&#x27;+&#x27; needs a number, PRICE or SIZE after it (character 8)" in bad and 'data-valid="0"' in bad
    good = page.post("/trades/expression/check/", {"expression": "price*2"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-valid="1"' in good and 'data-normalized="PRICE*2"' in good


def test_preview_fragment_and_errors(trades_data, page):
    html = page.post("/trades/preview/", {"exchanges": ["12"], "pricelow": "1", "pricehigh": ""}).content.decode()
    assert 'data-testid="preview-table"' in html and "preview-next" in html
    html = page.post("/trades/preview/", {"pricelow": "9", "pricehigh": "1"}).content.decode()
    assert "Max price" in html and "at least the minimum" in html
    html = page.post("/trades/preview/", {"operations": ["PRICE*"], "aggregateby": "min"}).content.decode()
    assert "&#x27;*&#x27; needs a number, PRICE or SIZE after it" in html


@pytest.mark.django_db(transaction=True)
def test_export_start_and_resume_fragments(trades_data, page, sync_jobs):
    html = page.post("/trades/exports/start/", {"exchanges": ["12"], "format": "csv_gz"},
                     HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="export-progress"' in html
    # without JavaScript the form lands on the export's page
    plain = page.post("/trades/exports/start/", {"exchanges": ["12"], "format": "csv_gz"})
    assert plain.status_code == 302 and "/trades/exports/" in plain["Location"]
    resume = page.get("/trades/exports/resume/", HTTP_HX_REQUEST="true").content.decode()
    assert "data-autodownload" in resume


def test_resume_without_exports_says_so(page):
    html = page.get("/trades/exports/resume/", HTTP_HX_REQUEST="true").content.decode()
    assert "You have no finished export yet." in html
    assert page.get("/trades/exports/resume/").status_code == 404


def test_export_list_page_query_count(trades_data, page, user, django_assert_max_num_queries):
    from trades.params import ExportParams
    from trades.services import export_request

    for ex in (10, 11, 12, 4):
        export_request(user=user, params=ExportParams(exchanges=(ex,)))
    with django_assert_max_num_queries(8):
        assert page.get("/trades/exports/").status_code == 200


def test_preview_without_javascript_renders_the_whole_page(trades_data, page):
    html = page.post("/trades/preview/", {"exchanges": ["12"]}).content.decode()
    assert "<html" in html and 'data-testid="preview-table"' in html and 'id="query-form"' in html
