"""API tokens: hashed, named, expiring, last use; the token page, the API and the admin; old DRF keys."""

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts import selectors, services
from accounts.models import ActivityEvent, ApiToken
from tests.support import PASSWORD, api_token

pytestmark = pytest.mark.django_db


def _client_for(api_client, key, scheme="Token"):
    api_client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    return api_client


# --- the service ---------------------------------------------------------------------------------


def test_only_a_digest_is_stored_and_the_key_authenticates(user):
    token, key = services.token_create(user=user, name="nightly export")
    row = ApiToken.objects.values().get(pk=token.pk)
    assert key not in {str(v) for v in row.values()}  # neither in clear nor as a column
    assert services.token_authenticate(key=key).pk == token.pk
    assert services.token_authenticate(key=key[:-1] + ("0" if key[-1] != "0" else "1")) is None
    event = ActivityEvent.objects.get(kind=ActivityEvent.Kind.TOKEN_CREATED, user=user)
    assert event.details["name"] == "nightly export" and key not in str(event.details)


@pytest.mark.parametrize("name, days, field", [
    ("", 30, "name"), ("bad\x00name", 30, "name"), ("tab\there", 30, "name"), ("newline\n", 30, "name"),
    ("x" * 101, 30, "name"),
    ("ok", 0, "days"), ("ok", 366, "days"), ("ok", -1, "days"), ("ok", True, "days"), ("ok", "7", "days"),
])
def test_bad_names_and_lifetimes_are_refused(user, name, days, field):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        services.token_create(user=user, name=name, days=days)
    assert field in exc.value.message_dict
    assert not ApiToken.objects.exists()


def test_expired_token_and_inactive_user_do_not_authenticate(user, api_client):
    token, key = services.token_create(user=user, name="short", days=1)
    ApiToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert services.token_authenticate(key=key) is None
    assert _client_for(api_client, key).get("/api/health/").status_code == 401


@pytest.mark.parametrize("header", ["Token", "Token a b", "Bearer", "Token \u00e9\u00e9\u00e9", "Token " + "f" * 300])
def test_malformed_token_headers_are_401_not_500(api_client, user, header):
    api_client.credentials(HTTP_AUTHORIZATION=header.encode("utf-8").decode("latin1"))
    assert api_client.get("/api/auth/tokens/").status_code == 401


def test_last_use_is_recorded(user, api_client, settings):
    token, key = services.token_create(user=user, name="probe")
    assert token.last_used_at is None
    assert _client_for(api_client, key, "Bearer").get("/api/auth/tokens/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    first = token.last_used_at
    # Within API_TOKEN_LAST_USED_SECONDS no second write.
    assert api_client.get("/api/auth/tokens/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at == first
    settings.API_TOKEN_LAST_USED_SECONDS = 0
    assert api_client.get("/api/auth/tokens/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at > first


# --- the API -------------------------------------------------------------------------------------


def test_api_lists_creates_and_revokes_own_tokens(user, api_client):
    key = api_token(user, name="first")
    client = _client_for(api_client, key)
    created = client.post("/api/auth/tokens/", {"name": "ci runner", "days": 7}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "ci runner" and len(body["token"]) == 64 and body["expired"] is False
    assert timedelta(days=6, hours=23) < (
        timezone.datetime.fromisoformat(body["expiry"]) - timezone.now()) <= timedelta(days=7)
    listed = client.get("/api/auth/tokens/")
    assert listed.status_code == 200
    assert [t["name"] for t in listed.json()] == ["ci runner", "first"]
    text = listed.content.decode()
    assert body["token"] not in text and key not in text and body["token"][:15] not in text
    assert set(listed.json()[0]) == {"id", "name", "created", "expiry", "last_used_at", "expired"}
    # The new key works on its own; revoking it by id ends it.
    other = type(api_client)()
    other.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert other.get("/api/auth/tokens/").status_code == 200
    assert client.delete(f"/api/auth/tokens/{body['id']}/").status_code == 204
    assert other.get("/api/auth/tokens/").status_code == 401
    assert ActivityEvent.objects.filter(kind=ActivityEvent.Kind.TOKEN_REVOKED, user=user,
                                        details__name="ci runner").exists()


def test_api_cannot_see_or_revoke_another_users_token(user, other_user, api_client):
    theirs, _ = services.token_create(user=other_user, name="bob's")
    client = _client_for(api_client, api_token(user))
    assert "bob's" not in client.get("/api/auth/tokens/").content.decode()
    response = client.delete(f"/api/auth/tokens/{theirs.pk}/")
    assert response.status_code == 404 and "detail" in response.json()
    assert ApiToken.objects.filter(pk=theirs.pk).exists()
    assert client.delete("/api/auth/tokens/999999/").status_code == 404


def test_api_create_input_errors(user, api_client):
    client = _client_for(api_client, api_token(user))
    for payload, field in [({}, "name"), ({"name": ""}, "name"), ({"name": "x", "days": 0}, "days"),
                           ({"name": "x", "days": 10_000}, "days"), ({"name": "x", "days": "many"}, "days"),
                           ({"name": "x" * 101}, "name")]:
        response = client.post("/api/auth/tokens/", payload, format="json")
        assert response.status_code == 400 and field in response.json(), payload
    assert ApiToken.objects.filter(user=user).count() == 1


def test_login_endpoint_names_and_limits_the_token(api_client, user):
    response = api_client.post("/api/auth/token/", {"username": "alice", "password": PASSWORD, "name": "laptop",
                                                    "days": 3}, format="json")
    assert response.status_code == 200
    token = ApiToken.objects.get(pk=response.json()["id"])
    assert token.name == "laptop" and token.expiry - timezone.now() <= timedelta(days=3)
    too_long = api_client.post("/api/auth/token/", {"username": "alice", "password": PASSWORD, "days": 999},
                               format="json")
    assert too_long.status_code == 400 and "days" in too_long.json()


def test_delete_current_token_needs_a_token(client, user):
    client.force_login(user)
    response = client.delete("/api/auth/token/")
    assert response.status_code == 400 and "not authenticated by an API token" in response.json()["detail"]


# --- the page ------------------------------------------------------------------------------------


def test_page_shows_the_key_once_then_never(client, user):
    client.force_login(user)
    assert "API tokens" in client.get(reverse("core:dashboard")).content.decode()  # user menu
    response = client.post(reverse("accounts:tokens"), {"name": "my script", "days": "90"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    key = response.context["new_key"]
    assert key in response.content.decode() and len(key) == 64
    token = ApiToken.objects.get(user=user)
    assert token.name == "my script" and timedelta(days=89) < token.expiry - timezone.now() <= timedelta(days=90)
    again = client.get(reverse("accounts:tokens")).content.decode()
    assert "my script" in again and key not in again and key[:15] not in again


def test_page_htmx_fragment_errors_and_revoke(client, user, other_user):
    client.force_login(user)
    fragment = client.post(reverse("accounts:tokens"), {"name": "", "days": "30"}, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()
    assert "Give the token a name" in fragment.content.decode()
    assert client.post(reverse("accounts:tokens"), {"name": "x", "days": "9999"}).status_code == 400
    assert client.post(reverse("accounts:tokens"), {"name": "x", "days": "abc"}).status_code == 400
    assert not ApiToken.objects.filter(user=user).exists()
    mine, _ = services.token_create(user=user, name="mine")
    theirs, _ = services.token_create(user=other_user, name="theirs")
    assert client.post(reverse("accounts:token_revoke", args=[theirs.pk])).status_code == 404
    assert ApiToken.objects.filter(pk=theirs.pk).exists()
    assert "theirs" not in client.get(reverse("accounts:tokens")).content.decode()
    revoked = client.post(reverse("accounts:token_revoke", args=[mine.pk]), HTTP_HX_REQUEST="true")
    assert revoked.status_code == 200 and "revoked" in revoked.content.decode()
    assert not ApiToken.objects.filter(pk=mine.pk).exists()


def test_page_needs_login(client, user):
    assert client.get(reverse("accounts:tokens")).status_code == 302
    token, _ = services.token_create(user=user, name="t")
    assert client.post(reverse("accounts:token_revoke", args=[token.pk])).status_code == 302
    assert ApiToken.objects.filter(pk=token.pk).exists()


# --- the admin: root's only ----------------------------------------------------------------------


def test_admin_token_list_is_roots_and_shows_no_secret(client, root_user, admin_user, user):
    token, key = services.token_create(user=user, name="visible to root")
    url = reverse("admin:accounts_apitoken_changelist")
    client.force_login(admin_user)
    assert client.get(url).status_code == 403
    assert client.post(reverse("admin:accounts_apitoken_delete", args=[token.pk]), {"post": "yes"}).status_code == 403
    assert ApiToken.objects.filter(pk=token.pk).exists()
    client.force_login(root_user)
    page = client.get(url).content.decode()
    assert "visible to root" in page and token.digest not in page and key[:15] not in page
    assert client.get(reverse("admin:accounts_apitoken_add")).status_code == 403
    assert client.post(reverse("admin:accounts_apitoken_delete", args=[token.pk]), {"post": "yes"}).status_code == 302
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert ActivityEvent.objects.filter(kind=ActivityEvent.Kind.TOKEN_REVOKED, actor=root_user).exists()


def test_drf_token_admin_is_gone(client, root_user):
    client.force_login(root_user)
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404


# --- the migration of old DRF keys ---------------------------------------------------------------


def test_old_drf_keys_are_hashed_in_place_and_keep_working(user, api_client):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("accounts.migrations.0003_hash_drf_tokens")
    old_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {migration.OLD_TABLE} "
                       "(\"key\" varchar(40) PRIMARY KEY, created timestamp with time zone NOT NULL, user_id bigint NOT NULL)"
                       if connection.vendor == "postgresql" else
                       f"CREATE TABLE {migration.OLD_TABLE} (\"key\" varchar(40) PRIMARY KEY, created datetime NOT NULL, "
                       "user_id bigint NOT NULL)")
        cursor.execute(f"INSERT INTO {migration.OLD_TABLE} (\"key\", created, user_id) VALUES (%s, %s, %s)",
                       [old_key, timezone.now() - timedelta(days=400), user.pk])
        cursor.execute(f"INSERT INTO {migration.OLD_TABLE} (\"key\", created, user_id) VALUES (%s, %s, %s)",
                       ["f" * 40, timezone.now(), 987654])  # a key of a user gone meanwhile

    class Editor:  # what RunPython hands over, as far as the migration uses it
        def __init__(self):
            self.connection = connection

        def execute(self, sql):
            with connection.cursor() as cursor:
                cursor.execute(sql)

    migration.hash_old_keys(apps, Editor())
    assert migration.OLD_TABLE not in connection.introspection.table_names()
    token = ApiToken.objects.get(user=user)
    assert token.name == migration.MIGRATED_NAME and old_key not in token.digest
    assert (timezone.now() - token.created).days >= 399  # the key's own creation date is kept
    assert _client_for(api_client, old_key).get("/api/auth/tokens/").status_code == 200
    assert ApiToken.objects.count() == 1
    assert selectors.token_list(user=user).get().pk == token.pk
