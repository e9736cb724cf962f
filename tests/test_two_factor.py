"""Two-factor authentication (allauth mfa, TOTP) for root and admins; required for the admin by a setting."""

import base64
import hashlib
import hmac
import struct
import time

import pytest
from allauth.mfa.models import Authenticator
from django.urls import reverse

from accounts import services
from accounts.models import User
from tests.support import PASSWORD, wait_until


def totp_code(secret: str, *, at: float | None = None) -> str:
    """RFC 6238 (SHA-1, 30 s, 6 digits), computed here without allauth's helpers."""
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(base64.b32decode(secret, casefold=True), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def fresh_code(secret: str) -> str:
    """A code with at least a few seconds of its 30 s window left, so it is still valid when posted."""
    wait_until(lambda: time.time() % 30 < 25, timeout=10, message="the start of a TOTP window")
    return totp_code(secret)


@pytest.fixture
def staff(db):
    root = services.user_ensure_root(username="root", email="root@example.com", password=PASSWORD)[0]
    admin = services.user_create(actor=root, username="admin1", email="admin1@example.com", password=PASSWORD,
                                 is_admin=True)
    plain = services.user_create(actor=admin, username="alice", email="alice@example.com", password=PASSWORD)
    return {"root": root, "admin": admin, "plain": plain}


def _login(client, username, password=PASSWORD):
    return client.post(reverse("account_login"), {"login": username, "password": password})


def _enrol_directly(user) -> str:
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


@pytest.mark.parametrize("who", ["root", "admin"])
def test_staff_enrol_totp_from_the_user_menu(client, staff, who):
    user = staff[who]
    assert _login(client, user.username).status_code == 302
    menu = client.get(reverse("core:dashboard")).content.decode()
    assert reverse("mfa_index") in menu
    page = client.get(reverse("mfa_activate_totp"))
    if page.status_code == 302 and page["Location"].startswith(reverse("account_reauthenticate")):
        # allauth asks for the password again before an authenticator is added
        assert client.post(page["Location"], {"password": PASSWORD}).status_code == 302
        page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = client.session["mfa.totp.secret"]
    wrong = client.post(reverse("mfa_activate_totp"), {"code": "000000" if totp_code(secret) != "000000" else "111111"})
    assert wrong.status_code == 200 and "Incorrect code" in wrong.content.decode()
    assert not Authenticator.objects.filter(user=user).exists()
    done = client.post(reverse("mfa_activate_totp"), {"code": fresh_code(secret)})
    assert done.status_code == 302
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def test_the_menu_offers_two_factor_to_staff_only(client, staff):
    client.force_login(staff["plain"])
    assert reverse("mfa_index") not in client.get(reverse("core:dashboard")).content.decode()


def test_login_of_an_enrolled_user_asks_for_the_code(client, staff):
    secret = _enrol_directly(staff["admin"])
    response = _login(client, "admin1")
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("core:dashboard")).status_code == 302  # not logged in yet
    bad = client.post(reverse("mfa_authenticate"), {"code": "123456" if totp_code(secret) != "123456" else "654321"})
    assert bad.status_code == 200 and "_auth_user_id" not in client.session
    good = client.post(reverse("mfa_authenticate"), {"code": fresh_code(secret)})
    assert good.status_code == 302
    assert client.session["_auth_user_id"] == str(staff["admin"].pk)


def test_login_without_an_authenticator_needs_no_code(client, staff):
    response = _login(client, "alice")
    assert response.status_code == 302 and response["Location"] != reverse("mfa_authenticate")
    assert client.session["_auth_user_id"] == str(staff["plain"].pk)


def test_admin_refuses_staff_without_two_factor_when_required(client, staff, settings):
    settings.PLATFORM_STAFF_REQUIRE_MFA = True
    client.force_login(staff["admin"])
    for url in (reverse("admin:index"), reverse("admin:accounts_user_changelist")):
        response = client.get(url)
        assert response.status_code == 403
        html = response.content.decode()
        assert "Two-factor authentication required" in html and reverse("mfa_index") in html
    client.force_login(staff["root"])
    assert client.get(reverse("admin:index")).status_code == 403
    _enrol_directly(staff["admin"])
    client.force_login(staff["admin"])
    assert client.get(reverse("admin:index")).status_code == 200
    # the rest of the platform is not affected
    client.force_login(staff["root"])
    assert client.get(reverse("core:dashboard")).status_code == 200


def test_admin_lets_staff_in_without_two_factor_by_default(client, staff, settings):
    assert settings.PLATFORM_STAFF_REQUIRE_MFA is False
    client.force_login(staff["admin"])
    assert client.get(reverse("admin:index")).status_code == 200


def test_plain_users_still_go_to_the_login_page(client, staff, settings):
    settings.PLATFORM_STAFF_REQUIRE_MFA = True
    client.force_login(staff["plain"])
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and User.objects.filter(pk=staff["plain"].pk, is_staff=False).exists()


def test_admin_cannot_see_or_remove_others_authenticators(client, staff):
    _enrol_directly(staff["root"])
    client.force_login(staff["admin"])
    assert client.get("/admin/mfa/authenticator/").status_code == 403
    root_authenticator = Authenticator.objects.get(user=staff["root"])
    assert client.post(f"/admin/mfa/authenticator/{root_authenticator.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Authenticator.objects.filter(pk=root_authenticator.pk).exists()


def test_api_token_needs_the_code_of_an_enrolled_account(api_client, staff):
    secret = _enrol_directly(staff["admin"])
    url = "/api/auth/token/"
    no_code = api_client.post(url, {"username": "admin1", "password": PASSWORD}, format="json")
    assert no_code.status_code == 400 and "two-factor" in no_code.json()["code"][0]
    wrong = api_client.post(url, {"username": "admin1", "password": PASSWORD, "code": "12345x"}, format="json")
    assert wrong.status_code == 400 and "token" not in wrong.json()
    good = api_client.post(url, {"username": "admin1", "password": PASSWORD, "code": fresh_code(secret)},
                           format="json")
    assert good.status_code == 200 and good.json()["token"]
    plain = api_client.post(url, {"username": "alice", "password": PASSWORD}, format="json")
    assert plain.status_code == 200
