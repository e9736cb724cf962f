"""Root creates a user in the management page, logs out, and that user logs in."""

import pytest

from accounts.models import ActivityEvent, User
from tests.support import PASSWORD

pytestmark = pytest.mark.e2e


def test_root_creates_user_who_then_logs_in(live_platform, browser_page, login_page, root_user):
    page = browser_page
    login_page(page, live_platform, root_user)
    page.click("text=Users")
    page.wait_for_selector("[data-testid=user-table]")
    assert "You (Root)" in page.inner_text("[data-testid=user-table]")

    # A weak password is refused inline, and nothing is created.
    form = page.locator("[data-testid=create-form]")
    form.locator("input[name=username]").fill("frank")
    form.locator("input[name=email]").fill("frank@example.com")
    form.locator("input[name=password]").fill("123")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("text=This password is too short")
    assert not User.objects.filter(username="frank").exists()

    form = page.locator("[data-testid=create-form]")
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=notice]")
    assert "User frank created." in page.inner_text("[data-testid=notice]")
    assert page.locator("tr[data-username=frank]").count() == 1

    page.click("summary:has-text('root')")
    page.click("[data-testid=logout]")
    page.wait_for_url("**/accounts/**")

    page.fill("input[name=login]", "frank")
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_selector("text=Hello, frank")
    assert page.locator("text=Users").count() == 0  # not an admin
    assert ActivityEvent.objects.filter(kind="login", user__username="frank").exists()
