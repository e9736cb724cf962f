"""The Content-Security-Policy in a real browser, as in production: DEBUG off, static files collected into a
directory of their own and served by whitenoise, a real uvicorn server.

Every page (the admin and the API docs too) loads with no CSP violation and no console error, the analyzer's and
the backtest's charts render (Vega under the expression interpreter, no 'unsafe-eval'), and an inline script
injected into a page does not run.
"""

from __future__ import annotations

import json

import pytest

from conftest import wait_until
from tests.e2e.pages import Watched, assert_every_route, every_page, login

pytestmark = pytest.mark.e2e


def test_every_page_runs_under_the_policy_and_charts_render(prod, root_user, platform_data, csp_browser_page):
    page = Watched(csp_browser_page, prod["url"])
    page.visit("/accounts/login/")
    login(csp_browser_page, prod["url"], root_user)
    pages = dict(every_page(platform_data).values())
    pages.update({
        "/admin/": None, "/admin/accounts/user/": None, f"/admin/accounts/user/{root_user.pk}/change/": None,
        "/api/docs/": ".swagger-ui .opblock-tag",
    })
    assert_every_route(every_page(platform_data))
    problems = {}
    for path, wait_for in pages.items():
        page.visit(path, wait_for=wait_for)
        if page.problems():
            problems[path] = page.problems()
        page.console_errors.clear()
    assert problems == {}, json.dumps(problems, indent=1)
    # The charts are drawn, not only embedded: the analyzer's auto-analysis has several, each with marks.
    csp_browser_page.goto(prod["url"] + f"/analyzer/sessions/{platform_data['session'].pk}/")
    wait_until(lambda: csp_browser_page.locator("[data-testid=plot][data-rendered='1'] svg.marks").count() >= 3,
               timeout=30, message="three analyzer charts drawn")
    assert csp_browser_page.locator("[data-testid=plot] svg.marks path, [data-testid=plot] svg.marks rect").count() > 0
    assert page.problems() == []


def test_injected_inline_script_handler_and_style_are_blocked(prod, csp_browser_page, root_user):
    """What an HTML injection would add to a page is refused by the browser, with the server's real header."""
    page = Watched(csp_browser_page, prod["url"])
    injected = ('<script>window.__injected = "script"</script>'
                '<img src="/static/core/platform.css" onerror="window.__injected = \'handler\'" id="evil-img">'
                '<div id="evil-style" style="color: rgb(255, 0, 0)">styled</div>')

    def inject(route):
        response = route.fetch()
        body = response.text().replace("</body>", injected + "</body>")
        route.fulfill(response=response, body=body)

    csp_browser_page.route(prod["url"] + "/accounts/login/", inject)
    page.visit("/accounts/login/")
    wait_until(lambda: len(csp_browser_page.evaluate("window.__csp")) >= 3, timeout=15, message="three violations")
    assert csp_browser_page.evaluate("window.__injected") is None
    violations = csp_browser_page.evaluate("window.__csp")
    assert any(v.startswith("script-src-elem blocked inline") for v in violations), violations
    assert any(v.startswith("script-src-attr blocked inline") for v in violations), violations
    assert any(v.startswith("style-src-attr blocked inline") for v in violations), violations
    assert csp_browser_page.evaluate("getComputedStyle(document.getElementById('evil-style')).color") != "rgb(255, 0, 0)"
