"""The Content-Security-Policy in a real browser, as in production: DEBUG off, static files collected into a
directory of their own and served by whitenoise, a real uvicorn server.

Every page (the admin and the API docs too) loads with no CSP violation and no console error, the analyzer's and
the backtest's charts render (Vega under the expression interpreter, no 'unsafe-eval'), and an inline script
injected into a page does not run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from conftest import BASE_DIR, _wait_http, database_url, free_port, wait_until

pytestmark = pytest.mark.e2e

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture(scope="session")
def production_platform(django_db_setup, django_db_blocker, tmp_path_factory):
    """uvicorn with DJANGO_DEBUG=false on the test database, after `collectstatic` into its own directory."""
    var_dir = tmp_path_factory.mktemp("prod-var")
    media = tmp_path_factory.mktemp("prod-media")
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url(), "PLATFORM_VAR_DIR": str(var_dir), "PLATFORM_MEDIA_ROOT": str(media),
        "DJANGO_DEBUG": "false", "DJANGO_SECURE_SSL_REDIRECT": "false", "DJANGO_SECURE_COOKIES": "false",
        "DJANGO_HSTS_SECONDS": "0", "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "PLATFORM_TEST_HASHED_STATIC": "1",
        "Q_QUEUE_NAME": f"csp{os.getpid()}", "PYTHONUNBUFFERED": "1",
    })
    env.pop("PYTEST_VERSION", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    collected = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=BASE_DIR, env=env,
                               capture_output=True, text=True, timeout=600)
    assert collected.returncode == 0, collected.stderr
    assert (var_dir / "staticfiles" / "vendor" / "vega-embed" / "vega-embed.min.js").exists()
    port = free_port()
    log = var_dir / "web.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--ws", "websockets", "--lifespan", "off", "--log-level", "warning"],
        cwd=BASE_DIR, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + "/accounts/login/", 60, [proc])
        yield {"url": url, "media": str(media), "log": log}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


@pytest.fixture
def prod(production_platform, transactional_db, settings):
    settings.MEDIA_ROOT = production_platform["media"]
    return production_platform


class Watched:
    """A page whose CSP violations (securitypolicyviolation events) and console errors are collected."""

    def __init__(self, page, base_url):
        self.page, self.base_url = page, base_url
        self.console_errors = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", lambda msg: msg.type == "error" and self.console_errors.append(msg.text))
        page.on("pageerror", lambda exc: self.console_errors.append(f"uncaught: {exc}"))
        page.on("response", lambda r: r.status >= 400 and self.console_errors.append(f"{r.status} {r.url}"))

    def visit(self, path: str, *, wait_for: str | None = None):
        response = self.page.goto(self.base_url + path)
        assert response.status == 200, (path, response.status)
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        if wait_for:
            self.page.wait_for_selector(wait_for, timeout=30000)
        self.page.wait_for_load_state("networkidle")
        return response

    def problems(self) -> list[str]:
        return self.page.evaluate("window.__csp") + self.console_errors


def login(page, url, user):
    from core.testing import PASSWORD

    page.goto(url + "/accounts/login/")
    page.fill("input[name=login]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(lambda u: "/accounts/login/" not in u)


def page_routes():
    """Page routes (not API, admin, auth or static) that take no argument."""
    def walk(resolver, prefix):
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                yield from walk(pattern, route)
            elif isinstance(pattern, URLPattern) and "<" not in route:
                yield "/" + route
    skip = ("/api/", "/^api/", "/admin/", "/accounts/", "/static/", "/media/")
    return {r for r in walk(get_resolver(), "") if not r.startswith(skip)}


@pytest.fixture
def platform_data(prod, root_user, sync_jobs):
    """One of everything the pages show: an analyzer session with its auto-analysis charts, a backtest run and a
    sweep, a script, a trade export."""
    from analyzer.tests.conftest import create_session, run_pending_answers
    from backtest import market_services, services as backtest_services
    from scripts_runner import services as scripts_services

    session = create_session(root_user, "trades.csv", "date,symbol,qty,price\n" + "".join(
        f"2024-0{1 + i % 3}-{1 + i % 28:02d},{['AAPL', 'MSFT', 'GOOG'][i % 3]},{i % 17},{100 + i % 50}\n"
        for i in range(300)), auto_analyze=True)
    run_pending_answers()
    instrument = market_services.instrument_create(symbol="BTCUSDT", kind="crypto", exchange="BINANCE", name="Bitcoin")
    market_services.bars_generate(instrument=instrument, interval="1h", bars=500, start="2024-01-01", seed=1,
                                  start_price=40_000)
    run, _ = backtest_services.run_create(owner=root_user, instrument=instrument, interval="1h", strategy="sma_cross",
                                          params={"fast": 5, "slow": 30})
    sweep = backtest_services.sweep_create(owner=root_user, instruments=[instrument], interval="1h",
                                           strategy="sma_cross", grid={"fast": [5, 10], "slow": [30, 60]})
    script = scripts_services.script_create(owner=root_user, name="hello.py", code=b"print('hello')\n")
    return {"session": session, "run": run, "sweep": sweep, "script": script, "instrument": instrument}


def test_every_page_runs_under_the_policy_and_charts_render(prod, root_user, platform_data, csp_browser_page):
    page = Watched(csp_browser_page, prod["url"])
    page.visit("/accounts/login/")
    login(csp_browser_page, prod["url"], root_user)
    d = platform_data
    pages = {
        "/": None, "/health/": None, "/users/": None, "/account/tokens/": None,
        "/trades/": None, "/trades/exports/": None,
        "/scripts/": None, f"/scripts/{d['script'].pk}/": None, "/scripts/runs/": None, "/scripts/access/": None,
        "/etl/": None, "/etl/jobs/": None, "/etl/fetch/": None, "/etl/missing/": None, "/etl/branches/": None,
        "/etl/branches/new/": None, "/etl/records/": None,
        "/analyzer/": None,
        "/backtest/": None, "/backtest/imports/new/": None, "/backtest/runs/": None, "/backtest/runs/new/": None,
        "/backtest/sweeps/": None, "/backtest/sweeps/new/": None,
        f"/backtest/sweeps/{d['sweep'].pk}/": None,
        # Charts: the analyzer's auto-analysis plots, the backtest's equity and price charts.
        f"/analyzer/sessions/{d['session'].pk}/": "[data-testid=plot][data-rendered='1'] svg.marks",
        f"/backtest/runs/{d['run'].pk}/": ".vega-chart[data-rendered='done'] svg.marks",
        f"/backtest/market/{d['instrument'].symbol}/": "[data-testid=price-chart][data-rendered='done'] svg.marks",
        "/admin/": None, "/admin/accounts/user/": None, f"/admin/accounts/user/{root_user.pk}/change/": None,
        "/accounts/password/change/": None,
        "/api/docs/": ".swagger-ui .opblock-tag",
    }
    missing = page_routes() - set(pages) - {"/favicon.ico", "/users/create/", "/health/worker-check/", "/trades/expression/check/", "/trades/preview/",
                                             "/trades/exports/start/", "/trades/exports/resume/", "/etl/missing/confirm/",
                                             "/etl/missing/run/", "/etl/branches/test-parse/", "/etl/records/export/",
                                             "/analyzer/upload/"}
    assert missing == set(), f"pages not visited: {sorted(missing)}"
    problems = {}
    for path, wait_for in pages.items():
        page.visit(path, wait_for=wait_for)
        if page.problems():
            problems[path] = page.problems()
        page.console_errors.clear()
    assert problems == {}
    # The charts are drawn, not only embedded: the analyzer's auto-analysis has several, each with marks.
    csp_browser_page.goto(prod["url"] + f"/analyzer/sessions/{d['session'].pk}/")
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
