"""A user makes an API token on the token page (from the user menu), sees its key once, uses it, revokes it."""

import httpx
import pytest

from accounts.models import ApiToken

pytestmark = pytest.mark.e2e


def test_token_page_create_see_once_use_revoke(live_platform, browser_page, login_page, user):
    page = browser_page
    login_page(page, live_platform, user)
    page.click("summary:has-text('alice')")
    page.click("text=API tokens")
    page.wait_for_selector("[data-testid=no-tokens]")

    form = page.locator("[data-testid=token-form]")
    form.locator("input[name=name]").fill("laptop script")
    form.locator("select[name=days]").select_option("7")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=new-token]")
    key = page.input_value("[data-testid=token-key]")
    assert len(key) == 64
    token = ApiToken.objects.get(user=user)
    assert token.name == "laptop script"
    assert httpx.get(f"{live_platform.url}/api/auth/tokens/", headers={"Authorization": f"Bearer {key}"}).status_code == 200

    page.reload()
    page.wait_for_selector("[data-testid=token-table]")
    assert key not in page.content() and "laptop script" in page.inner_text("[data-testid=token-table]")

    page.on("dialog", lambda dialog: dialog.accept())
    page.click(f"[data-testid=revoke-{token.pk}]")
    page.wait_for_selector("[data-testid=notice]")
    assert "revoked" in page.inner_text("[data-testid=notice]")
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert httpx.get(f"{live_platform.url}/api/auth/tokens/", headers={"Authorization": f"Bearer {key}"}).status_code == 401
