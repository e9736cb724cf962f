"""Every password change or reset, deactivation, deletion and role change ends the user's API tokens,
whichever route made it (the signal in accounts.signals, not each route); other saves do not."""

import re

import pytest
from django.contrib.auth.hashers import make_password
from django.core import mail
from django.urls import reverse

from accounts import services
from accounts.models import ActivityEvent, ApiToken, User
from tests.support import PASSWORD, api_token

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "Another-long-pass-62"


def _works(api_client, key) -> bool:
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    status = api_client.get("/api/auth/tokens/").status_code
    assert status in (200, 401)
    return status == 200


def _assert_ended(api_client, user, key, reason, epoch_before):
    assert not _works(api_client, key)
    assert not ApiToken.objects.filter(user_id=user.pk).exists()
    event = ActivityEvent.objects.filter(kind=ActivityEvent.Kind.TOKEN_REVOKED, username=user.username).latest("pk")
    assert reason in event.details["reason"] and event.details["count"] == 2
    if User.objects.filter(pk=user.pk).exists():
        assert User.objects.get(pk=user.pk).auth_epoch > epoch_before


@pytest.fixture
def alice_tokens(user, api_client):
    keys = [api_token(user, name="one"), api_token(user, name="two")]
    assert _works(api_client, keys[0])
    return keys


def test_own_password_change_through_allauth(client, api_client, user, alice_tokens):
    client.force_login(user)
    response = client.post(reverse("account_change_password"),
                           {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    _assert_ended(api_client, user, alice_tokens[0], "password changed", 0)
    assert client.get(reverse("core:dashboard")).status_code == 200  # the session that changed it lives on


def test_password_reset_through_allauths_mail(client, api_client, user, alice_tokens):
    from accounts import services

    services.email_record_initial(user=user)  # as user_create does: resets go only to verified addresses
    assert client.post(reverse("account_reset_password"), {"email": user.email}).status_code == 302
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+)", mail.outbox[-1].body).group(1)
    form_url = client.get(link).url  # allauth moves the key into the session, then shows the form
    response = client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302, response.content[:500]
    assert User.objects.get(pk=user.pk).check_password(NEW_PASSWORD)
    _assert_ended(api_client, user, alice_tokens[1], "password changed", 0)


def test_password_set_by_an_admin_on_the_users_page(client, api_client, user, admin_user, alice_tokens):
    client.force_login(admin_user)
    response = client.post(reverse("accounts:user_password", args=[user.pk]), {"new_password": NEW_PASSWORD})
    assert response.status_code == 200
    _assert_ended(api_client, user, alice_tokens[0], "password changed", 0)


def test_password_set_by_root_through_the_api(api_client, auth_client, user, root_user, alice_tokens):
    response = auth_client(root_user).post(f"/api/users/{user.pk}/password/", {"new_password": NEW_PASSWORD},
                                           format="json")
    assert response.status_code == 204
    _assert_ended(api_client, user, alice_tokens[0], "password changed", 0)


def test_password_set_in_the_django_admin(client, api_client, user, root_user, alice_tokens):
    client.force_login(root_user)
    url = reverse("admin:auth_user_password_change", args=[user.pk])
    response = client.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"})
    assert response.status_code == 302
    _assert_ended(api_client, user, alice_tokens[0], "password changed", 0)


def test_a_refused_password_change_ends_nothing(api_client, auth_client, user, admin_user, make_user):
    other_admin = make_user("admin2", is_admin=True)
    keys = [api_token(other_admin), api_token(other_admin)]
    response = auth_client(admin_user).post(f"/api/users/{other_admin.pk}/password/",
                                            {"new_password": NEW_PASSWORD}, format="json")
    assert response.status_code == 403
    assert _works(api_client, keys[0])


def test_deactivation(api_client, user, alice_tokens):
    user.is_active = False
    user.save()
    _assert_ended(api_client, user, alice_tokens[0], "deactivated", 0)


def test_deletion_by_an_admin(api_client, auth_client, user, admin_user, alice_tokens):
    assert auth_client(admin_user).delete(f"/api/users/{user.pk}/").status_code == 204
    _assert_ended(api_client, user, alice_tokens[0], "deleted", 0)


@pytest.mark.parametrize("is_admin", [True, False])
def test_role_change_by_root(api_client, auth_client, user, root_user, is_admin):
    if not is_admin:
        services.user_set_admin(actor=root_user, user=user, is_admin=True)
    epoch = User.objects.get(pk=user.pk).auth_epoch
    keys = [api_token(user), api_token(user)]
    response = auth_client(root_user).post(f"/api/users/{user.pk}/role/", {"is_admin": is_admin}, format="json")
    assert response.status_code == 200
    _assert_ended(api_client, user, keys[0], "role changed", epoch)


def test_other_saves_and_a_login_hash_upgrade_end_nothing(client, api_client, user, alice_tokens, settings):
    user.first_name = "Alice"
    user.save()
    user.email = "alice2@example.com"
    user.save(update_fields=["email"])
    # A login with a hash made by an older hasher: Django upgrades the stored hash (not a password change).
    older = settings.PASSWORD_HASHERS[-1].rsplit(".", 1)[-1]
    assert older != settings.PASSWORD_HASHERS[0].rsplit(".", 1)[-1]
    User.objects.filter(pk=user.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))
    response = client.post(reverse("account_login"), {"login": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert not User.objects.get(pk=user.pk).password.startswith("pbkdf2_sha256$")  # it was upgraded
    assert _works(api_client, alice_tokens[0]) and ApiToken.objects.filter(user=user).count() == 2
    assert User.objects.get(pk=user.pk).auth_epoch == 0
