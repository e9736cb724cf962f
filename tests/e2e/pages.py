"""The list of every page of the platform, for the browser walks (the CSP walk, the layout and accessibility
walk). `every_page` names one URL per page route, with the objects `platform_data` built; `assert_every_route`
fails when a page route was added and is walked by nobody."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, get_resolver

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""

# Routes that answer a form post, an HTMX fragment, a file or a probe (/healthz: plain "ok"), not a page.
NOT_PAGES = {
    "/favicon.ico", "/healthz", "/users/create/", "/health/worker-check/", "/trades/expression/check/", "/trades/preview/",
    "/trades/exports/start/", "/trades/exports/resume/", "/etl/missing/confirm/", "/etl/missing/run/",
    "/etl/branches/test-parse/", "/etl/records/export/", "/analyzer/upload/", "/etl/jobs/<int:pk>/<str:action>/",
}

# The charts a page draws, waited for before the page is looked at.
ANALYZER_PLOTS = "[data-testid=plot][data-rendered='1'] svg.marks"
BACKTEST_CHART = ".vega-chart[data-rendered='done'] svg.marks"
PRICE_CHART = "[data-testid=price-chart][data-rendered='done'] svg.marks"


class Watched:
    """A page whose CSP violations (securitypolicyviolation events) and console errors are collected."""

    def __init__(self, page, base_url):
        self.page, self.base_url = page, base_url
        self.console_errors = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", lambda msg: msg.type == "error" and self.console_errors.append(msg.text))
        page.on("pageerror", lambda exc: self.console_errors.append(f"uncaught: {exc}"))
        page.on("response", lambda r: r.status >= 400 and self.console_errors.append(f"{r.status} {r.url}"))

    def visit(self, path: str, *, wait_for: str | None = None, status: int = 200):
        response = self.page.goto(self.base_url + path)
        assert response.status == status, (path, response.status)
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        if wait_for:
            self.page.wait_for_selector(wait_for, timeout=30000)
        self.page.wait_for_load_state("networkidle")
        return response

    def problems(self) -> list[str]:
        return self.page.evaluate("window.__csp") + self.console_errors


def login(page, url, user):
    from tests.support import PASSWORD

    page.goto(url + "/accounts/login/")
    page.fill("input[name=login]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(lambda u: "/accounts/login/" not in u)


def page_routes() -> set[str]:
    """Page routes (not API, admin, auth or static), their arguments left as `<int:pk>`."""
    def walk(resolver, prefix):
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern, route)
            elif isinstance(pattern, URLPattern):
                yield "/" + route
    skip = ("/api/", "/^api/", "/admin/", "/accounts/", "/static/", "/media/")
    return {r for r in walk(get_resolver(), "") if not r.startswith(skip)}


def every_page(d: dict) -> dict[str, tuple[str, str | None]]:
    """{route: (URL, selector to wait for)} for every page of the platform's own layout, with `platform_data`'s
    objects for the routes that take one. The allauth pages the platform renders in its layout are here too."""
    return {
        "/": ("/", None), "/health/": ("/health/", None), "/users/": ("/users/", None),
        "/account/tokens/": ("/account/tokens/", None),
        "/trades/": ("/trades/", None), "/trades/exports/": ("/trades/exports/", None),
        "/trades/exports/<int:pk>/": (f"/trades/exports/{d['export'].pk}/", None),
        "/scripts/": ("/scripts/", None), "/scripts/<int:pk>/": (f"/scripts/{d['script'].pk}/", None),
        "/scripts/runs/": ("/scripts/runs/", None),
        "/scripts/runs/<int:pk>/": (f"/scripts/runs/{d['script_run'].pk}/", None),
        "/scripts/access/": ("/scripts/access/", None),
        "/etl/": ("/etl/", None), "/etl/jobs/": ("/etl/jobs/", None),
        "/etl/jobs/<int:pk>/": (f"/etl/jobs/{d['fetch_job'].pk}/", None),
        "/etl/fetch/": ("/etl/fetch/", None), "/etl/missing/": ("/etl/missing/", None),
        "/etl/branches/": ("/etl/branches/", None), "/etl/branches/new/": ("/etl/branches/new/", None),
        "/etl/branches/<int:pk>/": (f"/etl/branches/{d['branch'].pk}/", None),
        "/etl/records/": ("/etl/records/", None),
        "/etl/files/": ("/etl/files/", None),
        "/etl/files/<int:pk>/": (f"/etl/files/{d['fetched_file'].pk}/", None),
        "/etl/exports/<int:pk>/": (f"/etl/exports/{d['record_export'].pk}/", None),
        "/analyzer/": ("/analyzer/", None),
        "/analyzer/sessions/<int:pk>/": (f"/analyzer/sessions/{d['session'].pk}/", ANALYZER_PLOTS),
        "/backtest/": ("/backtest/", None),
        "/backtest/market/<str:symbol>/": (f"/backtest/market/{d['instrument'].symbol}/", PRICE_CHART),
        "/backtest/imports/new/": ("/backtest/imports/new/", None),
        "/backtest/imports/<int:pk>/": (f"/backtest/imports/{d['bar_import'].pk}/", None),
        "/backtest/runs/": ("/backtest/runs/", None), "/backtest/runs/new/": ("/backtest/runs/new/", None),
        "/backtest/runs/<int:pk>/": (f"/backtest/runs/{d['run'].pk}/", BACKTEST_CHART),
        "/backtest/sweeps/": ("/backtest/sweeps/", None), "/backtest/sweeps/new/": ("/backtest/sweeps/new/", None),
        "/backtest/sweeps/<int:pk>/": (f"/backtest/sweeps/{d['sweep'].pk}/", None),
        "/backtest/portfolios/": ("/backtest/portfolios/", None),
        "/backtest/portfolios/new/": ("/backtest/portfolios/new/", None),
        "/backtest/portfolios/<int:pk>/": (f"/backtest/portfolios/{d['portfolio'].pk}/", BACKTEST_CHART),
        "/accounts/password/change/": ("/accounts/password/change/", None),
        "/accounts/email/": ("/accounts/email/", None),
    }


def assert_every_route(pages: dict) -> None:
    """Every page route is in `pages`, or is an action/fragment/file route (a route with an action after its
    argument — `/exports/<int:pk>/cancel/` — is one)."""
    def is_action(route: str) -> bool:
        return route in NOT_PAGES or (">" in route and not route.endswith(">/"))
    missing = {r for r in page_routes() if not is_action(r)} - set(pages)
    assert missing == set(), f"pages not visited: {sorted(missing)}"
