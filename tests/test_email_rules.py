"""E-mail addresses follow the password rules, on every route; resets go to verified addresses only."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import RequestFactory
from django.urls import reverse

from accounts import services
from accounts.models import ActivityEvent, User
from tests.support import PASSWORD


@pytest.fixture
def people(db):
    root = services.user_ensure_root(username="root", email="root@example.com", password=PASSWORD)[0]
    admin = services.user_create(actor=root, username="admin1", email="admin1@example.com", password=PASSWORD,
                                 is_admin=True)
    other_admin = services.user_create(actor=root, username="admin2", email="admin2@example.com",
                                       password=PASSWORD, is_admin=True)
    plain = services.user_create(actor=admin, username="alice", email="alice@example.com", password=PASSWORD)
    other = services.user_create(actor=admin, username="bob", email="bob@example.com", password=PASSWORD)
    return {"root": root, "admin": admin, "other_admin": other_admin, "plain": plain, "other": other}


def _request(user):
    request = RequestFactory().post("/")
    request.user = user
    request.session = {}
    return request


def _reset(client, email):
    return client.post(reverse("account_reset_password"), {"email": email})


# --- the service ---------------------------------------------------------------------------


def test_addresses_given_at_creation_are_verified(people):
    for person in people.values():
        assert EmailAddress.objects.get(user=person).verified


@pytest.mark.parametrize("actor,target,allowed", [
    ("root", "admin", True), ("root", "plain", True), ("root", "root", True),
    ("admin", "plain", True), ("admin", "admin", True),
    ("admin", "other_admin", False), ("admin", "root", False),
    ("plain", "plain", True), ("plain", "other", False), ("plain", "admin", False),
])
def test_who_may_change_whose_address(people, actor, target, allowed):
    actor, target = people[actor], people[target]
    before = target.email
    if allowed:
        services.user_set_email(actor=actor, user=target, email="fresh@example.com")
        target.refresh_from_db()
        assert target.email == "fresh@example.com"
        address = EmailAddress.objects.get(user=target)
        assert address.primary and address.verified == actor.is_superuser
        event = ActivityEvent.objects.get(kind=ActivityEvent.Kind.EMAIL_CHANGED, user=target)
        assert event.actor == actor
        assert event.details == {"old": before, "new": "fresh@example.com", "verified": actor.is_superuser}
    else:
        with pytest.raises(PermissionDenied, match="Only root|your own"):
            services.user_set_email(actor=actor, user=target, email="fresh@example.com")
        target.refresh_from_db()
        assert target.email == before
        assert not EmailAddress.objects.filter(email="fresh@example.com").exists()
        assert not ActivityEvent.objects.filter(kind=ActivityEvent.Kind.EMAIL_CHANGED).exists()


@pytest.mark.parametrize("email,message", [
    ("BOB@example.com", "already exists"), ("not-an-address", "valid email"), ("", "Enter an email"),
])
def test_bad_addresses_are_refused(people, email, message):
    with pytest.raises(ValidationError) as err:
        services.user_set_email(actor=people["root"], user=people["plain"], email=email)
    assert message in " ".join(err.value.message_dict["email"])


def test_a_change_by_an_admin_sends_a_confirmation_to_the_new_address(
    people, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.user_set_email(actor=people["admin"], user=people["plain"], email="new-alice@example.com",
                                request=_request(people["admin"]))
    assert [mail.to for mail in mailoutbox] == [["new-alice@example.com"]]
    assert "/accounts/confirm-email/" in mailoutbox[0].body


# --- password reset ------------------------------------------------------------------------------


def test_reset_goes_to_an_address_from_creation(client, people, mailoutbox):
    _reset(client, "alice@example.com")
    assert [mail.to for mail in mailoutbox] == [["alice@example.com"]]
    assert "/accounts/password/reset/key/" in mailoutbox[0].body


def test_no_reset_mail_to_an_unverified_address_someone_added(client, people, mailoutbox):
    services.user_set_email(actor=people["admin"], user=people["plain"], email="attacker@example.com")
    _reset(client, "attacker@example.com")
    assert mailoutbox == []
    assert ActivityEvent.objects.filter(
        kind=ActivityEvent.Kind.PASSWORD_RESET_REFUSED, user=people["plain"], details__email="attacker@example.com"
    ).exists()


def test_reset_goes_to_an_address_root_set(client, people, mailoutbox):
    services.user_set_email(actor=people["root"], user=people["admin"], email="admin-new@example.com")
    _reset(client, "admin-new@example.com")
    assert [mail.to for mail in mailoutbox] == [["admin-new@example.com"]]


def test_reset_goes_to_an_address_once_the_user_confirmed_it(
    client, people, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.user_set_email(actor=people["admin"], user=people["plain"], email="confirm-me@example.com",
                                request=_request(people["admin"]))
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/[^\s]+/)", mailoutbox[0].body).group(1)
    mailoutbox.clear()
    client.force_login(people["plain"])
    assert client.post(link).status_code == 302
    assert EmailAddress.objects.get(user=people["plain"], email="confirm-me@example.com").verified
    assert ActivityEvent.objects.filter(kind=ActivityEvent.Kind.EMAIL_CONFIRMED, user=people["plain"]).exists()
    client.logout()
    _reset(client, "confirm-me@example.com")
    assert [mail.to for mail in mailoutbox] == [["confirm-me@example.com"]]


def test_address_added_on_the_email_page_gets_no_reset_until_confirmed(client, people, mailoutbox):
    client.force_login(people["plain"])
    response = client.post(reverse("account_email"), {"action_add": "", "email": "second@example.com"})
    assert response.status_code == 302
    added = EmailAddress.objects.get(email="second@example.com")
    assert added.user == people["plain"] and not added.verified
    assert ActivityEvent.objects.filter(kind=ActivityEvent.Kind.EMAIL_ADDED, user=people["plain"]).exists()
    assert [mail.to for mail in mailoutbox] == [["second@example.com"]]  # the confirmation
    mailoutbox.clear()
    client.logout()
    _reset(client, "second@example.com")
    assert mailoutbox == []


# --- the pages, the API and the Django admin ----------------------------------------------------------


def test_users_page_changes_a_plain_users_address_and_refuses_roots(client, people):
    client.force_login(people["admin"])
    response = client.post(reverse("accounts:user_email", args=[people["root"].pk]), {"email": "mine@example.com"})
    assert response.status_code == 403
    people["root"].refresh_from_db()
    assert people["root"].email == "root@example.com"
    response = client.post(reverse("accounts:user_email", args=[people["other_admin"].pk]),
                           {"email": "mine@example.com"}, HTTP_HX_REQUEST="true")
    assert "Only root can change another administrator" in response.content.decode()
    response = client.post(reverse("accounts:user_email", args=[people["plain"].pk]),
                           {"email": "alice2@example.com"}, HTTP_HX_REQUEST="true")
    assert "E-mail address of alice is now alice2@example.com." in response.content.decode()
    bad = client.post(reverse("accounts:user_email", args=[people["plain"].pk]), {"email": "bob@example.com"})
    assert bad.status_code == 400 and "already exists" in bad.content.decode()
    html = client.get(reverse("accounts:user_list")).content.decode()
    assert reverse("accounts:user_email", args=[people["plain"].pk]) in html
    assert reverse("accounts:user_email", args=[people["root"].pk]) not in html


def test_api_changes_addresses_under_the_same_rules(auth_client, people):
    client = auth_client(people["admin"])
    url = "/api/users/{}/email/"
    refused = client.post(url.format(people["root"].pk), {"email": "mine@example.com"}, format="json")
    assert refused.status_code == 403 and "Only root" in refused.json()["detail"]
    assert client.post(url.format(people["other_admin"].pk), {"email": "m@example.com"}, format="json").status_code == 403
    bad = client.post(url.format(people["plain"].pk), {"email": "nope"}, format="json")
    assert bad.status_code == 400 and "email" in bad.json()
    taken = client.post(url.format(people["plain"].pk), {"email": "Bob@Example.com"}, format="json")
    assert taken.status_code == 400 and "already exists" in taken.json()["email"][0]
    done = client.post(url.format(people["plain"].pk), {"email": "alice3@example.com"}, format="json")
    assert done.status_code == 200 and done.json()["email"] == "alice3@example.com"
    assert auth_client(people["plain"]).post(url.format(people["plain"].pk), {"email": "x@example.com"},
                                             format="json").status_code == 403
    root = auth_client(people["root"])
    assert root.post(url.format(people["admin"].pk), {"email": "a1@example.com"}, format="json").status_code == 200
    assert EmailAddress.objects.get(user=people["admin"]).verified


def _admin_change(client, target, **changes):
    data = {"username": target.username, "email": target.email, "first_name": "", "last_name": "",
            "is_active": "on", **changes}
    return client.post(reverse("admin:accounts_user_change", args=[target.pk]), data)


def test_django_admin_routes_address_changes_through_the_service(client, people):
    client.force_login(people["admin"])
    response = _admin_change(client, people["plain"], email="via-admin@example.com")
    assert response.status_code == 302
    event = ActivityEvent.objects.get(kind=ActivityEvent.Kind.EMAIL_CHANGED, user=people["plain"])
    assert event.actor == people["admin"] and event.details["new"] == "via-admin@example.com"
    assert not EmailAddress.objects.get(user=people["plain"]).verified
    taken = _admin_change(client, people["plain"], email="BOB@example.com")
    assert taken.status_code == 200 and "already exists" in taken.content.decode()
    assert _admin_change(client, people["root"], email="mine@example.com").status_code == 403
    assert _admin_change(client, people["other_admin"], email="mine@example.com").status_code == 403
    people["root"].refresh_from_db()
    assert people["root"].email == "root@example.com"


def test_takeover_by_reset_fails_end_to_end(client, people, mailoutbox):
    """An admin tries every route to put their own address on root, then asks for root's reset."""
    admin, root = people["admin"], people["root"]
    client.force_login(admin)
    client.post("/admin/account/emailaddress/add/",
                {"user": root.pk, "email": "evil@example.com", "verified": "on", "primary": "on"})
    _admin_change(client, root, email="evil@example.com")
    client.post(reverse("accounts:user_email", args=[root.pk]), {"email": "evil@example.com"})
    client.logout()
    _reset(client, "evil@example.com")
    _reset(client, "root@example.com")
    reset_links = [mail.to for mail in mailoutbox if "/accounts/password/reset/key/" in mail.body]
    assert reset_links == [["root@example.com"]]
    assert not EmailAddress.objects.filter(email="evil@example.com").exists()
    assert User.objects.get(pk=root.pk).email == "root@example.com"


def test_migration_records_existing_addresses_as_verified(make_user):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("accounts.migrations.0004_email_addresses")
    older = make_user("older")  # made without the service: no EmailAddress row, as before this change
    kept = make_user("kept")
    EmailAddress.objects.create(user=kept, email=kept.email, primary=True, verified=False)
    migration.record_existing_addresses(apps, None)
    assert EmailAddress.objects.get(user=older).verified
    assert not EmailAddress.objects.get(user=kept).verified  # rows allauth already had are left alone


def test_root_edits_in_the_address_admin_are_logged(client, people):
    client.force_login(people["root"])
    response = client.post("/admin/account/emailaddress/add/",
                           {"user": people["plain"].pk, "email": "extra@example.com", "verified": "on"})
    assert response.status_code == 302
    added = EmailAddress.objects.get(email="extra@example.com")
    event = ActivityEvent.objects.get(kind=ActivityEvent.Kind.EMAIL_CHANGED, user=people["plain"])
    assert event.actor == people["root"] and event.details["new"] == "extra@example.com"
    client.post(f"/admin/account/emailaddress/{added.pk}/delete/", {"post": "yes"})
    assert not EmailAddress.objects.filter(pk=added.pk).exists()
    removed = ActivityEvent.objects.get(kind=ActivityEvent.Kind.EMAIL_REMOVED, user=people["plain"])
    assert removed.actor == people["root"] and removed.details["old"] == "extra@example.com"
