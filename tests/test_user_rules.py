"""Role rules for user management, in the service, the page, the API and the admin."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts import services
from accounts.models import ActivityEvent, User
from tests.support import PASSWORD


# --- services -------------------------------------------------------------------


def test_admin_creates_user_and_it_is_logged(admin_user):
    created = services.user_create(actor=admin_user, username="carol", email="carol@example.com", password=PASSWORD)
    assert created.check_password(PASSWORD)
    assert created.role == "user"
    event = ActivityEvent.objects.get(kind=ActivityEvent.Kind.USER_CREATED, user=created)
    assert event.actor == admin_user


def test_plain_user_cannot_create_users(user):
    with pytest.raises(PermissionDenied):
        services.user_create(actor=user, username="x", email="x@example.com", password=PASSWORD)
    assert not User.objects.filter(username="x").exists()


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("username", "ALICE", "already exists"),
        ("email", "Alice@Example.com", "already exists"),
        ("password", "123", "too short"),
        ("password", "password123", "too common"),
        ("username", "bad name!", "valid username"),
    ],
)
def test_create_user_validation(admin_user, user, field, value, message):
    data = {"username": "newbie", "email": "newbie@example.com", "password": PASSWORD, field: value}
    with pytest.raises(ValidationError) as err:
        services.user_create(actor=admin_user, **data)
    assert message in " ".join(err.value.message_dict[field])


def test_only_root_grants_admin_on_create(admin_user, root_user):
    with pytest.raises(PermissionDenied, match="Only root"):
        services.user_create(actor=admin_user, username="a2", email="a2@example.com", password=PASSWORD, is_admin=True)
    made = services.user_create(actor=root_user, username="a3", email="a3@example.com", password=PASSWORD, is_admin=True)
    assert made.role == "admin"


def test_nobody_deletes_root_or_themselves(root_user, admin_user):
    with pytest.raises(PermissionDenied, match="root account cannot be deleted"):
        services.user_delete(actor=admin_user, user=root_user)
    with pytest.raises(PermissionDenied, match="root account cannot be deleted"):
        services.user_delete(actor=root_user, user=root_user)
    with pytest.raises(PermissionDenied, match="your own account"):
        services.user_delete(actor=admin_user, user=admin_user)


def test_non_root_admin_cannot_delete_admin_but_root_can(make_user, root_user, admin_user):
    other_admin = make_user("admin2", is_admin=True)
    with pytest.raises(PermissionDenied, match="Only root"):
        services.user_delete(actor=admin_user, user=other_admin)
    services.user_delete(actor=root_user, user=other_admin)
    assert not User.objects.filter(pk=other_admin.pk).exists()
    assert ActivityEvent.objects.filter(kind=ActivityEvent.Kind.USER_DELETED, username="admin2").exists()


def test_admin_deletes_plain_user(admin_user, user):
    services.user_delete(actor=admin_user, user=user)
    assert not User.objects.filter(pk=user.pk).exists()


def test_plain_user_cannot_delete(user, other_user):
    with pytest.raises(PermissionDenied):
        services.user_delete(actor=user, user=other_user)


def test_password_rules(make_user, root_user, admin_user, user):
    other_admin = make_user("admin2", is_admin=True)
    services.user_set_password(actor=admin_user, user=user, password="Another-pass-77")
    user.refresh_from_db()
    assert user.check_password("Another-pass-77")
    with pytest.raises(PermissionDenied, match="another administrator"):
        services.user_set_password(actor=admin_user, user=other_admin, password="Another-pass-77")
    with pytest.raises(PermissionDenied, match="root password"):
        services.user_set_password(actor=admin_user, user=root_user, password="Another-pass-77")
    services.user_set_password(actor=root_user, user=other_admin, password="Another-pass-78")
    other_admin.refresh_from_db()
    assert other_admin.check_password("Another-pass-78")
    with pytest.raises(PermissionDenied):
        services.user_set_password(actor=user, user=admin_user, password="Another-pass-79")
    with pytest.raises(ValidationError):
        services.user_set_password(actor=root_user, user=user, password="short")


def test_only_root_changes_roles(root_user, admin_user, user):
    with pytest.raises(PermissionDenied, match="Only root"):
        services.user_set_admin(actor=admin_user, user=user, is_admin=True)
    services.user_set_admin(actor=root_user, user=user, is_admin=True)
    user.refresh_from_db()
    assert user.role == "admin"
    assert ActivityEvent.objects.filter(kind=ActivityEvent.Kind.ROLE_CHANGED, user=user).exists()
    services.user_set_admin(actor=root_user, user=user, is_admin=False)
    user.refresh_from_db()
    assert user.role == "user"
    with pytest.raises(PermissionDenied, match="root account"):
        services.user_set_admin(actor=root_user, user=root_user, is_admin=False)


def test_list_order_self_root_admins_users(make_user, root_user):
    from accounts.selectors import user_list

    a1 = make_user("zed", is_admin=True)
    u1 = make_user("amy")
    a2 = make_user("bea", is_admin=True)
    ordered = list(user_list(actor=a2))
    assert ordered == [a2, root_user, a1, u1]


def test_ensure_root_once(db):
    root, generated, created = services.user_ensure_root(username="root", email="root@example.com", password=None)
    assert created and generated and root.check_password(generated) and root.is_superuser
    again, generated2, created2 = services.user_ensure_root(username="x", email="x@example.com", password="y")
    assert again == root and not created2 and generated2 is None


# --- the HTMX page -------------------------------------------------------------------


def test_user_page_requires_staff(client, user):
    client.force_login(user)
    response = client.get(reverse("accounts:user_list"))
    # The platform's 403 page, not the admin site's login (tests/test_staff_pages.py walks every staff page).
    assert response.status_code == 403 and b'data-testid="forbidden"' in response.content


def test_user_page_lists_roles(client, root_user, admin_user, user):
    client.force_login(admin_user)
    html = client.get(reverse("accounts:user_list")).content.decode()
    assert html.index("admin1") < html.index(">root<") < html.index("alice")
    assert "You (Admin)" in html and ">Root<" in html and ">User<" in html


def test_user_page_create_shows_inline_errors(client, admin_user, user):
    client.force_login(admin_user)
    response = client.post(
        reverse("accounts:user_create"),
        {"username": "alice", "email": "new@example.com", "password": "123"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "A user with that username already exists." in html
    assert "This password is too short" in html
    assert User.objects.count() == 2


def test_user_page_create_delete_password(client, root_user):
    client.force_login(root_user)
    response = client.post(
        reverse("accounts:user_create"),
        {"username": "dave", "email": "dave@example.com", "password": PASSWORD, "is_admin": "on"},
        HTTP_HX_REQUEST="true",
    )
    assert "User dave created." in response.content.decode()
    dave = User.objects.get(username="dave")
    assert dave.is_staff
    response = client.post(reverse("accounts:user_password", args=[dave.pk]), {"new_password": "Fresh-pass-42"})
    dave.refresh_from_db()
    assert dave.check_password("Fresh-pass-42")
    client.post(reverse("accounts:user_delete", args=[dave.pk]))
    assert not User.objects.filter(username="dave").exists()


def test_user_page_refuses_rule_breaks(client, make_user, root_user, admin_user):
    other_admin = make_user("admin2", is_admin=True)
    client.force_login(admin_user)
    response = client.post(reverse("accounts:user_delete", args=[other_admin.pk]))
    assert response.status_code == 403
    assert User.objects.filter(pk=other_admin.pk).exists()
    response = client.post(reverse("accounts:user_delete", args=[root_user.pk]), HTTP_HX_REQUEST="true")
    assert "root account cannot be deleted" in response.content.decode()
    response = client.post(reverse("accounts:user_role", args=[other_admin.pk]), {"is_admin": "false"})
    assert response.status_code == 403
    other_admin.refresh_from_db()
    assert other_admin.is_staff


# --- the API ----------------------------------------------------------------------------


def test_api_users_requires_admin(auth_client, user, api_client):
    assert api_client.get("/api/users/").status_code == 401
    assert auth_client(user).get("/api/users/").status_code == 403
    assert auth_client(user).post("/api/users/", {"username": "x"}).status_code == 403


def test_api_users_crud_and_rules(auth_client, root_user, admin_user, user):
    client = auth_client(admin_user)
    listing = client.get("/api/users/").json()
    assert [row["username"] for row in listing] == ["admin1", "root", "alice"]
    bad = client.post("/api/users/", {"username": "alice", "email": "not-an-email", "password": "1"}, format="json")
    assert bad.status_code == 400
    assert "email" in bad.json()
    created = client.post(
        "/api/users/", {"username": "erin", "email": "erin@example.com", "password": PASSWORD}, format="json"
    )
    assert created.status_code == 201 and created.json()["role"] == "user"
    erin_id = created.json()["id"]
    assert client.get(f"/api/users/{erin_id}/").json()["email"] == "erin@example.com"
    weak = client.post(f"/api/users/{erin_id}/password/", {"new_password": "abc"}, format="json")
    assert weak.status_code == 400 and "new_password" in weak.json()
    assert client.post(f"/api/users/{erin_id}/password/", {"new_password": "Other-pass-55"}, format="json").status_code == 204
    assert client.post(f"/api/users/{erin_id}/role/", {"is_admin": True}, format="json").status_code == 403
    assert client.delete(f"/api/users/{root_user.pk}/").status_code == 403
    assert client.delete(f"/api/users/{admin_user.pk}/").status_code == 403
    assert client.post("/api/users/", {"username": "boss", "email": "b@example.com", "password": PASSWORD, "is_admin": True}, format="json").status_code == 403
    assert client.delete(f"/api/users/{erin_id}/").status_code == 204
    assert client.get(f"/api/users/{erin_id}/").status_code == 404
    root = auth_client(root_user)
    assert root.post(f"/api/users/{user.pk}/role/", {"is_admin": True}, format="json").json()["role"] == "admin"


# --- the Django admin -----------------------------------------------------------------


def test_admin_site_enforces_delete_rules(client, make_user, admin_user, root_user):
    other_admin = make_user("admin2", is_admin=True)
    client.force_login(admin_user)
    url = reverse("admin:accounts_user_delete", args=[other_admin.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert User.objects.filter(pk=other_admin.pk).exists()
    assert client.get(reverse("admin:auth_user_password_change", args=[root_user.pk])).status_code == 403
    plain = make_user("plain")
    assert client.post(reverse("admin:accounts_user_delete", args=[plain.pk]), {"post": "yes"}).status_code == 302
    assert not User.objects.filter(pk=plain.pk).exists()


def test_admin_activity_log_is_read_only_and_filterable(client, admin_user, user):
    client.force_login(admin_user)
    services.activity_log(kind=ActivityEvent.Kind.LOGIN, user=user)
    url = reverse("admin:accounts_activityevent_changelist")
    response = client.get(url, {"kind": "login", "user__id__exact": user.pk})
    assert response.status_code == 200 and "alice" in response.content.decode()
    assert client.get(reverse("admin:accounts_activityevent_add")).status_code == 403


def test_admin_site_hidden_from_plain_users(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:accounts_activityevent_changelist"))
    assert response.status_code == 302
