"""Administrator pages refuse others in the platform's own layout: a logged-in user who is not staff gets the
403 page (with the platform's navigation, not the admin site's login); a visitor is sent to the login page."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

GET_PAGES = ["accounts:user_list", "core:health", "scripts_runner:access"]


def staff_posts(target_pk: int) -> list[str]:
    return [reverse("accounts:user_create"), reverse("core:worker_check_start"), reverse("scripts_runner:access")] + [
        reverse(f"accounts:{name}", args=[target_pk]) for name in ("user_delete", "user_password", "user_email",
                                                                   "user_role")]


@pytest.mark.parametrize("name", GET_PAGES)
def test_a_plain_user_gets_the_platforms_403_page(client, user, name):
    client.force_login(user)
    response = client.get(reverse(name))
    assert response.status_code == 403
    html = response.content.decode()
    assert 'data-testid="forbidden"' in html
    assert 'class="container-fluid site-header"' in html  # the platform's header, with its navigation
    assert user.username in html
    assert "/admin/login/" not in response.get("Location", "") and "Django administration" not in html


def test_a_plain_user_cannot_post_to_any_administrator_action(client, user, other_user):
    client.force_login(user)
    for url in staff_posts(other_user.pk):
        response = client.post(url, {"username": "x", "email": "x@example.com", "password": "a-Long-pass-123",
                                     "new_password": "a-Long-pass-123", "user": user.pk, "run": "on"})
        assert response.status_code == 403, url
    other_user.refresh_from_db()
    assert other_user.check_password("a-Long-pass-123") is False
    assert type(user).objects.filter(username="x").exists() is False


@pytest.mark.parametrize("name", GET_PAGES)
def test_a_visitor_is_sent_to_the_login_page(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login") + "?next=")


@pytest.mark.parametrize("name", GET_PAGES)
def test_an_administrator_opens_the_page(client, admin_user, name):
    client.force_login(admin_user)
    assert client.get(reverse(name)).status_code == 200
