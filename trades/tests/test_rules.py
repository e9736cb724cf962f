"""The export rules are `ExportParams.clean`, applied by the service and the preview: every route refuses alike."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.support import PASSWORD
from trades import selectors, services
from trades.models import Export
from trades.params import ExportParams

pytestmark = pytest.mark.django_db

BROKEN = [
    ({"exchanges": [999]}, ExportParams(exchanges=(999,)), "exchanges", "Unknown exchange id(s): 999."),
    ({"tickers": ["no good!"]}, ExportParams(tickers=("no good!",)), "tickers", "Not a ticker symbol: NO GOOD!."),
    ({"datelow": "2015-06-30"}, ExportParams(datelow=date(2015, 6, 30)), "datelow",
     "Dates start at 2015-07-01."),
    ({"pricelow": 10, "pricehigh": 5}, ExportParams(pricelow=10, pricehigh=5), "pricehigh",
     "The maximum price must be at least the minimum."),
    ({"operations": [{"expression": "PRICE"}, {"expression": "PRICE"}]}, ExportParams(operations=("PRICE", "PRICE")),
     "operations", "The same expression is listed twice."),
]


@pytest.mark.parametrize(("body", "params", "field", "message"), BROKEN)
def test_rule_holds_on_service_preview_api_and_page(trades_data, client, auth_client, user, body, params, field,
                                                    message):
    with pytest.raises(ValidationError) as caught:
        services.export_request(user=user, params=params)
    assert caught.value.message_dict == {field: [message]}
    with pytest.raises(ValidationError):
        selectors.export_preview(params=params)
    api = auth_client(user)
    for url in ("/api/trades/exports/", "/api/trades/preview/"):
        response = api.post(url, body, format="json")
        assert response.status_code == 400 and response.json() == {field: [message]}
    assert client.login(username=user.username, password=PASSWORD)
    form = {k: ([o["expression"] for o in v] if k == "operations" else v) for k, v in body.items()}
    for name in ("trades:export_start", "trades:preview"):
        response = client.post(reverse(name), form, HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and message in response.content.decode()
    assert Export.objects.count() == 0


def test_clean_normalizes_what_the_signature_sees(trades_data):
    cleaned = ExportParams(exchanges=(12, 10, 12), tickers=(" aapl", "MSFT", "")).clean()
    assert cleaned.exchanges == (10, 12) and cleaned.tickers == ("AAPL", "MSFT")
    assert cleaned.signature(owner_id=1) == ExportParams(exchanges=(10, 12), tickers=("AAPL", "MSFT")).signature(owner_id=1)
