"""Every page of the platform's own layout at a phone's width (390 × 844, light colours) and a laptop's (1366 × 900,
dark colours): the page never scrolls sideways, and axe-core finds no serious or critical accessibility fault.

axe is injected as a script, which the Content-Security-Policy refuses: these pages are looked at in a context
that bypasses it (`browser_page`); the policy itself is walked in test_csp_browser.py, in a context of its own.
A screenshot of each main page at both widths is saved under var/test-output/screenshots/ (ignored by git; the
path is printed in the closing summary), for a person to look at.
"""

from __future__ import annotations

import json

import pytest

from conftest import BASE_DIR
from tests.e2e.pages import assert_every_route, every_page, login

pytestmark = pytest.mark.e2e

AXE = BASE_DIR / "node_modules" / "axe-core" / "axe.min.js"
# The phone pass is in the light colour scheme, the laptop pass in the dark one: axe checks contrast in both.
WIDTHS = {"phone": (390, 844, "light"), "laptop": (1366, 900, "dark")}
MAIN_PAGES = {"/", "/trades/", "/trades/exports/<int:pk>/", "/scripts/", "/scripts/runs/<int:pk>/", "/etl/",
              "/etl/missing/", "/etl/branches/", "/etl/files/", "/etl/files/<int:pk>/", "/analyzer/sessions/<int:pk>/", "/backtest/",
              "/backtest/runs/<int:pk>/", "/backtest/sweeps/<int:pk>/"}

SIDEWAYS = """() => {
  const wide = [];
  if (document.documentElement.scrollWidth > innerWidth) {
    for (const el of document.querySelectorAll("body *")) {
      const r = el.getBoundingClientRect();
      if (r.right > innerWidth + 1 && !el.closest(".table-scroll, .chart-scroll")) {
        wide.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${[...el.classList].join(".")} ${Math.round(r.right)}px`);
      }
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth, wide: wide.slice(0, 5)};
}"""

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) =>
    `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ")}`);
}"""


def look_at(page, url: str, wait_for: str | None) -> None:
    response = page.goto(url)
    assert response.status == 200, (url, response.status)
    if wait_for:
        page.wait_for_selector(wait_for, timeout=30000)
    page.wait_for_load_state("networkidle")


def test_every_page_fits_a_phone_and_passes_axe(prod, root_user, platform_data, browser_page, report):
    assert AXE.exists(), "axe-core is not installed (npm install)"
    shots = BASE_DIR / "var" / "test-output" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    pages = every_page(platform_data)
    assert_every_route(pages)
    login(browser_page, prod["url"], root_user)
    sideways, faults = {}, {}
    for width_name, (width, height, scheme) in WIDTHS.items():
        browser_page.set_viewport_size({"width": width, "height": height})
        browser_page.emulate_media(color_scheme=scheme)
        for route, (path, wait_for) in pages.items():
            look_at(browser_page, prod["url"] + path, wait_for)
            fit = browser_page.evaluate(SIDEWAYS)
            if fit["scrollWidth"] > fit["innerWidth"]:
                sideways[f"{width_name} {path}"] = fit
            browser_page.add_script_tag(path=str(AXE))
            found = browser_page.evaluate(AXE_RUN)
            if found:
                faults[f"{width_name} {path}"] = found
            if route in MAIN_PAGES:
                name = path.strip("/").replace("/", "_") or "dashboard"
                browser_page.screenshot(path=str(shots / f"{name}-{width_name}.png"), full_page=True)
    report(f"page screenshots: {shots}")
    assert (sideways, faults) == ({}, {}), json.dumps({"sideways": sideways, "axe": faults}, indent=1)


def test_navigation_collapses_on_a_phone_and_the_user_menu_is_reachable(prod, root_user, browser_page):
    browser_page.set_viewport_size({"width": 390, "height": 844})
    login(browser_page, prod["url"], root_user)
    look_at(browser_page, prod["url"] + "/trades/", None)
    nav_links = browser_page.locator(".app-nav a")
    assert not nav_links.first.is_visible()
    browser_page.click("[data-testid=nav-toggle]")
    assert nav_links.first.is_visible()
    assert browser_page.locator("[data-testid=nav-toggle]").get_attribute("aria-expanded") == "true"
    browser_page.click(".user-menu summary")
    logout = browser_page.locator("[data-testid=logout]")
    assert logout.is_visible()
    box = logout.bounding_box()
    assert 0 <= box["x"] and box["x"] + box["width"] <= 390, box
    # At a laptop's width the links show without the toggle.
    browser_page.set_viewport_size({"width": 1366, "height": 900})
    look_at(browser_page, prod["url"] + "/trades/", None)
    assert not browser_page.locator("[data-testid=nav-toggle]").is_visible()
    assert nav_links.first.is_visible()
