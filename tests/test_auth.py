"""Login, tokens, rate limit, sign-up switch and the activity log."""

import pytest
from django.test import override_settings
from django.urls import reverse
from accounts.models import ActivityEvent, ApiToken
from tests.support import PASSWORD

UA = "pytest-browser/1.0"


def login(client, login_value, password=PASSWORD):
    return client.post(
        reverse("account_login"), {"login": login_value, "password": password},
        HTTP_USER_AGENT=UA, REMOTE_ADDR="10.1.2.3",
    )


@pytest.mark.parametrize("login_value", ["alice", "alice@example.com"])
def test_login_with_username_or_email_is_logged(client, user, login_value):
    response = login(client, login_value)
    assert response.status_code == 302
    event = ActivityEvent.objects.get(kind=ActivityEvent.Kind.LOGIN)
    assert event.user == user and event.ip == "10.1.2.3" and event.user_agent == UA
    assert client.get(reverse("core:dashboard")).status_code == 200


def test_failed_login_is_logged_with_ip(client, user):
    response = login(client, "alice", "wrong-password")
    assert response.status_code == 200
    assert "not correct" in response.content.decode()
    event = ActivityEvent.objects.get(kind=ActivityEvent.Kind.LOGIN_FAILED)
    assert event.username == "alice" and event.ip == "10.1.2.3" and event.user_agent == UA


def test_logout_is_logged(client, user):
    login(client, "alice")
    client.post(reverse("account_logout"))
    assert ActivityEvent.objects.filter(kind=ActivityEvent.Kind.LOGOUT, user=user).exists()
    assert client.get(reverse("core:dashboard")).status_code == 302


def test_own_password_change_is_logged(client, user):
    client.force_login(user)
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": "Brand-new-pass-31", "password2": "Brand-new-pass-31"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("Brand-new-pass-31")
    assert ActivityEvent.objects.filter(kind=ActivityEvent.Kind.PASSWORD_CHANGED, user=user).exists()


@override_settings(ACCOUNT_RATE_LIMITS={"login_failed": "100/m/ip,3/5m/key"})
def test_repeated_failures_lock_out_even_the_right_password(client, user):
    for _ in range(3):
        login(client, "alice", "wrong-password")
    response = login(client, "alice", PASSWORD)
    assert response.status_code in (200, 429)
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert ActivityEvent.objects.filter(kind=ActivityEvent.Kind.LOCKOUT, username="alice").exists()


@override_settings(ACCOUNT_RATE_LIMITS={"login_failed": "100/m/ip,3/5m/key"})
def test_api_token_login_shares_the_rate_limit(api_client, user):
    for _ in range(3):
        assert api_client.post("/api/auth/token/", {"username": "alice", "password": "nope"}).status_code == 400
    response = api_client.post("/api/auth/token/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed login attempts" in response.json()["detail"]


def test_signup_is_off_by_default(client, db):
    response = client.get(reverse("account_signup"))
    assert "Sign Up Closed" in response.content.decode() or response.status_code == 403


@override_settings(ACCOUNT_ALLOW_SIGNUP=True)
def test_signup_can_be_turned_on(client, db):
    response = client.post(
        reverse("account_signup"),
        {"username": "newcomer", "email": "n@example.com", "password1": "Newcomer-pass-8", "password2": "Newcomer-pass-8"},
    )
    assert response.status_code == 302
    from accounts.models import User

    assert User.objects.get(username="newcomer").role == "user"


def test_google_login_offered_only_when_configured(client, db, settings):
    assert "Google" not in client.get(reverse("account_login")).content.decode()
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {"APPS": [{"client_id": "id-123", "secret": "s", "key": ""}], "SCOPE": ["email"]}
    }
    assert "Google" in client.get(reverse("account_login")).content.decode()


# --- API tokens ----------------------------------------------------------------------------


def test_token_by_username_and_email_then_revoke(api_client, user):
    first = api_client.post("/api/auth/token/", {"username": "alice", "password": PASSWORD}, format="json")
    assert first.status_code == 200
    key = first.json()["token"]
    assert first.json()["is_admin"] is False
    # Each login is a new token (several named tokens per user); the first keeps working.
    again = api_client.post("/api/auth/token/", {"username": "alice@example.com", "password": PASSWORD}, format="json")
    assert again.status_code == 200 and again.json()["token"] != key
    assert ActivityEvent.objects.filter(kind=ActivityEvent.Kind.TOKEN_CREATED, user=user).count() == 2
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api_client.get("/api/health/").status_code in (200, 503)
    assert api_client.delete("/api/auth/token/").status_code == 204
    assert not ApiToken.objects.filter(pk=first.json()["id"]).exists()
    assert ApiToken.objects.filter(pk=again.json()["id"]).exists()
    assert ActivityEvent.objects.filter(kind=ActivityEvent.Kind.TOKEN_REVOKED, user=user).exists()
    assert api_client.get("/api/health/").status_code == 401


def test_token_login_errors_are_json(api_client, user):
    missing = api_client.post("/api/auth/token/", {}, format="json")
    assert missing.status_code == 400 and set(missing.json()) == {"username", "password"}
    wrong = api_client.post("/api/auth/token/", {"username": "alice", "password": "x"}, format="json")
    assert wrong.status_code == 400 and "not correct" in wrong.json()["detail"]
    garbage = api_client.post("/api/auth/token/", "{not json", content_type="application/json")
    assert garbage.status_code == 400


def test_every_endpoint_needs_authentication(api_client, db):
    for path in ["/api/health/", "/api/users/", "/api/users/1/", "/api/auth/token/", "/api/auth/tokens/"]:
        response = api_client.get(path)
        assert response.status_code in (401, 405), path
    assert api_client.delete("/api/auth/token/").status_code == 401
    assert api_client.delete("/api/auth/tokens/1/").status_code == 401
    assert api_client.post("/api/auth/tokens/", {"name": "x"}, format="json").status_code == 401


def test_token_is_stored_hashed(user):
    from accounts import services

    token, key = services.token_create(user=user, name="cron")
    stored = ApiToken.objects.get(pk=token.pk)
    assert key not in stored.digest and stored.digest != key and len(stored.digest) == 128
    assert services.token_authenticate(key=key) == stored


def test_dashboard_lists_only_own_jobs(client, user, other_user):
    from core.models import WorkerCheck

    mine = WorkerCheck.objects.create(owner=user)
    theirs = WorkerCheck.objects.create(owner=other_user)
    client.force_login(user)
    jobs = client.get(reverse("core:dashboard")).context["jobs"]
    assert mine in jobs and theirs not in jobs


def test_health_page_is_staff_only(client, user, admin_user):
    client.force_login(user)
    assert client.get(reverse("core:health")).status_code == 403  # the platform's 403 page
    client.force_login(admin_user)
    assert client.get(reverse("core:health")).status_code == 200


def test_worker_check_is_staff_only_in_the_service_and_the_page(client, user, admin_user, sync_jobs):
    from django.core.exceptions import PermissionDenied

    from core import selectors, services
    from core.models import JobStatus, WorkerCheck

    with pytest.raises(PermissionDenied):
        services.worker_check_create(user=user)
    client.force_login(user)
    assert client.post(reverse("core:worker_check_start")).status_code == 403  # the platform's 403 page
    assert not WorkerCheck.objects.exists()
    client.force_login(admin_user)
    assert client.post(reverse("core:worker_check_start")).status_code == 302
    sync_jobs.commit()
    check = selectors.worker_check_latest(user=admin_user)
    assert check is not None and check.status == JobStatus.SUCCEEDED
    assert client.get(reverse("core:health")).context["check"] == check
    assert selectors.worker_check_latest(user=user) is None


@override_settings(ACCOUNT_RATE_LIMITS={"login_failed": "100/m/ip,3/5m/key"})
def test_lockout_is_per_account_whatever_the_host_header_or_the_name_used(client, user):
    """Failures by username and by e-mail, each on another Host header and port, share one budget."""
    tries = [("alice", "127.0.0.1:8000"), ("ALICE@example.com", "localhost:8001"), ("Alice", "[::1]")]
    for login_value, host in tries:
        response = client.post(reverse("account_login"), {"login": login_value, "password": "wrong-password"},
                               HTTP_HOST=host, REMOTE_ADDR="10.1.2.3")
        assert "Too many failed login attempts" not in response.content.decode()
    response = client.post(reverse("account_login"), {"login": "alice@example.com", "password": PASSWORD},
                           HTTP_HOST="localhost:9999", REMOTE_ADDR="10.9.9.9")
    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


@override_settings(ACCOUNT_RATE_LIMITS={"login_failed": "100/m/ip,3/5m/key"})
def test_one_accounts_lockout_leaves_other_accounts_alone(client, user, django_user_model):
    django_user_model.objects.create_user("bob", "bob@example.com", PASSWORD)
    for _ in range(3):
        login(client, "alice", "wrong-password")
    assert "Too many failed login attempts" in login(client, "alice", PASSWORD).content.decode()
    response = login(client, "bob@example.com")
    assert response.status_code == 302


@override_settings(ACCOUNT_RATE_LIMITS={"login_failed": "3/5m/ip,100/5m/key"})
def test_the_per_ip_limit_counts_failures_across_accounts(client, user, django_user_model):
    django_user_model.objects.create_user("bob", "bob@example.com", PASSWORD)
    for name in ("nobody", "alice", "carol"):
        login(client, name, "wrong-password")
    assert "Too many failed login attempts" in login(client, "bob", PASSWORD).content.decode()
    other_ip = client.post(reverse("account_login"), {"login": "bob", "password": PASSWORD}, REMOTE_ADDR="10.7.7.7")
    assert other_ip.status_code == 302
