"""Every model in the Django admin is there by decision: what a non-root admin may do with it.

A model registered later without a row here fails `test_every_registered_model_is_decided`.
Root keeps everything. Third-party models (API tokens, task schedules and queue, e-mail
addresses, social accounts, two-factor authenticators, groups) are root's alone.
"""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

ALL = frozenset({"view", "add", "change", "delete"})
VIEW = frozenset({"view"})
NONE = frozenset()

# What a non-root admin may do in the admin, per registered model.
ADMIN_ACCESS = {
    # platform: accounts (per-object rules of accounts.services apply on top)
    "accounts.user": ALL,
    "accounts.activityevent": VIEW,
    # platform: core
    "core.workercheck": VIEW,
    "core.workerheartbeat": VIEW,
    "core.jobevent": VIEW,
    # platform: trades
    "trades.exchange": ALL,
    "trades.loadedfile": VIEW,
    "trades.export": VIEW,
    # platform: scripts
    "scripts_runner.script": frozenset({"view", "delete"}),
    "scripts_runner.scriptrun": VIEW,
    # platform: ETL
    "etl.filesource": ALL,
    "etl.branch": ALL,
    "etl.fetchjob": VIEW,
    "etl.fetchedfile": VIEW,
    "etl.record": VIEW,
    "etl.recordexport": VIEW,
    "etl.auditlog": VIEW,
    # platform: analyzer sessions are private to their owner, staff included
    "analyzer.analysissession": NONE,
    "analyzer.answer": NONE,
    "analyzer.message": NONE,
    "analyzer.processing": NONE,
    # platform: backtest (instruments and price bars are market data the admins keep)
    "backtest.instrument": ALL,
    "backtest.pricebar": ALL,
    "backtest.barimport": VIEW,
    "backtest.backtestrun": VIEW,
    "backtest.backtestresult": VIEW,
    "backtest.sweep": VIEW,
    "backtest.sweepresult": VIEW,
    "backtest.portfolio": VIEW,
    # third party: root's alone
    "auth.group": NONE,
    "accounts.apitoken": NONE,  # API tokens (knox): root sees who holds which and revokes; never the key
    "django_q.schedule": NONE,
    "django_q.success": NONE,
    "django_q.failure": NONE,
    "django_q.ormq": NONE,
    "account.emailaddress": NONE,
    "socialaccount.socialaccount": NONE,
    "socialaccount.socialapp": NONE,
    "socialaccount.socialtoken": NONE,
    "mfa.authenticator": NONE,
}
# Registered only in some configurations (django-q2 lists its ORM queue only with the ORM broker).
SOMETIMES_REGISTERED = {"django_q.ormq"}


def _registry():
    return {model._meta.label_lower: (model, model_admin) for model, model_admin in admin.site._registry.items()}


def _request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _access(model_admin, user) -> set[str]:
    request = _request(user)
    return {
        action for action, allowed in (
            ("view", model_admin.has_view_permission(request)),
            ("add", model_admin.has_add_permission(request)),
            ("change", model_admin.has_change_permission(request)),
            ("delete", model_admin.has_delete_permission(request)),
        ) if allowed
    }


def test_every_registered_model_is_decided():
    registered = set(_registry())
    undecided = registered - set(ADMIN_ACCESS)
    assert not undecided, f"registered in the admin without a decision in ADMIN_ACCESS: {sorted(undecided)}"
    stale = set(ADMIN_ACCESS) - registered - SOMETIMES_REGISTERED
    assert not stale, f"rows for models no longer registered: {sorted(stale)}"


@pytest.mark.parametrize("label", sorted(ADMIN_ACCESS))
def test_admin_holds_exactly_the_decided_access(label, admin_user):
    registry = _registry()
    if label not in registry:
        pytest.skip(f"{label} is not registered in this configuration")
    model, model_admin = registry[label]
    assert _access(model_admin, admin_user) == set(ADMIN_ACCESS[label])
    module = model_admin.has_module_permission(_request(admin_user))
    if ADMIN_ACCESS[label]:
        assert module, label
    elif not any(access for other, access in ADMIN_ACCESS.items() if other.split(".")[0] == model._meta.app_label):
        assert not module, label  # no model of the app is the admin's: the app is not even listed


@pytest.mark.parametrize("label", sorted(ADMIN_ACCESS))
def test_root_keeps_everything(label, root_user):
    registry = _registry()
    if label not in registry:
        pytest.skip(f"{label} is not registered in this configuration")
    _, model_admin = registry[label]
    assert "view" in _access(model_admin, root_user)


def test_plain_user_holds_nothing(user):
    for label, (_, model_admin) in _registry().items():
        assert _access(model_admin, user) == set(), label


def test_forbidden_pages_answer_403_to_an_admin(client, admin_user):
    client.force_login(admin_user)
    checked = 0
    for label, (model, _) in sorted(_registry().items()):
        opts = model._meta
        access = ADMIN_ACCESS[label]
        if "view" not in access and "change" not in access:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            assert client.get(url).status_code == 403, url
            checked += 1
        if "add" not in access:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
            assert client.get(url).status_code == 403, url
            checked += 1
    assert checked >= 20


def test_allowed_changelists_open_for_an_admin(client, admin_user):
    client.force_login(admin_user)
    for label, (model, _) in sorted(_registry().items()):
        if "view" in ADMIN_ACCESS[label]:
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            assert client.get(url).status_code == 200, url


def test_admin_index_lists_no_third_party_app(client, admin_user, root_user):
    client.force_login(admin_user)
    html = client.get(reverse("admin:index")).content.decode()
    for app_label in ("django_q", "account", "socialaccount", "mfa", "auth"):
        assert f"/admin/{app_label}/" not in html, app_label
    assert "/admin/accounts/apitoken/" not in html
    assert "/admin/etl/" in html and "/admin/accounts/" in html
    client.force_login(root_user)
    html = client.get(reverse("admin:index")).content.decode()
    assert "/admin/django_q/" in html and "/admin/accounts/apitoken/" in html


# --- the three takeover paths, as an admin would try them --------------------------------------


def test_admin_cannot_read_root_api_key(client, admin_user, root_user):
    from accounts import services

    token, key = services.token_create(user=root_user, name="root's script")
    client.force_login(admin_user)
    listing = client.get("/admin/accounts/apitoken/")
    assert listing.status_code == 403 and key not in listing.content.decode()
    detail = client.get(f"/admin/accounts/apitoken/{token.pk}/change/")
    assert detail.status_code == 403 and key not in detail.content.decode()
    assert client.post(f"/admin/accounts/apitoken/{token.pk}/delete/", {"post": "yes"}).status_code == 403
    assert not admin_user.has_perm("accounts.view_apitoken")
    # Root sees the token, but never its key: only a digest is stored.
    client.force_login(root_user)
    listing = client.get("/admin/accounts/apitoken/")
    assert listing.status_code == 200 and "root&#x27;s script" in listing.content.decode()
    assert key not in listing.content.decode() and key[:15] not in listing.content.decode()


def test_admin_cannot_add_a_schedule(client, admin_user):
    from django_q.models import Schedule

    client.force_login(admin_user)
    before = Schedule.objects.count()
    response = client.post(
        "/admin/django_q/schedule/add/",
        {"name": "pwn", "func": "os.system", "args": "'id'", "schedule_type": "O", "repeats": "-1",
         "next_run_0": "2030-01-01", "next_run_1": "00:00:00"},
    )
    assert response.status_code == 403
    assert Schedule.objects.count() == before
    recovery = Schedule.objects.filter(func="core.tasks.jobs_recover").first()
    if recovery is not None:
        assert client.get(f"/admin/django_q/schedule/{recovery.pk}/change/").status_code == 403


def test_admin_cannot_give_root_an_address(client, admin_user, root_user):
    from allauth.account.models import EmailAddress

    client.force_login(admin_user)
    response = client.post(
        "/admin/account/emailaddress/add/",
        {"user": root_user.pk, "email": "evil@example.com", "verified": "on", "primary": "on"},
    )
    assert response.status_code == 403
    assert not EmailAddress.objects.filter(email="evil@example.com").exists()
