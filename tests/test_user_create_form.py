"""The user-create form reports every fault in one round: the form's own checks (an address that is not an
e-mail address) and the account rules (a name already taken, a weak password) together."""

import pytest
from django.urls import reverse

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_every_fault_is_reported_at_once(client, admin_user, user):
    client.force_login(admin_user)
    response = client.post(reverse("accounts:user_create"), {"username": user.username, "email": "not-an-address",
                                                             "password": "123"})
    assert response.status_code == 400
    form = response.context["form"]
    assert "Enter a valid email address." in form.errors["email"]
    assert "A user with that username already exists." in form.errors["username"]
    assert any("too short" in message for message in form.errors["password"]), form.errors["password"]
    assert User.objects.filter(email="not-an-address").exists() is False


def test_a_missing_field_and_a_taken_address_together(client, admin_user, user):
    client.force_login(admin_user)
    response = client.post(reverse("accounts:user_create"), {"username": "", "email": user.email,
                                                             "password": "a-Long-pass-4821"})
    form = response.context["form"]
    assert form.errors["username"] == ["This field is required."]
    assert form.errors["email"] == ["A user with that email address already exists."]
    assert "password" not in form.errors


def test_a_valid_form_still_creates_the_user(client, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("accounts:user_create"), {"username": "carol", "email": "carol@example.com",
                                                             "password": "a-Long-pass-4821"})
    assert response.status_code == 200
    assert User.objects.get(username="carol").check_password("a-Long-pass-4821")
