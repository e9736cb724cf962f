"""User management rules, enforced here so the page, the admin and the API agree.

- Only admins (staff) manage users.
- Nobody deletes root or themselves; a non-root admin cannot delete another admin.
- Root changes anyone's password; a non-root admin cannot change another admin's.
- Only root grants or revokes the admin role; root itself is never demoted.
- E-mail addresses follow the password rules: root changes anyone's, an admin a
  plain user's (never another admin's or root's), a user their own. An address
  given when the account is created, or set by root, is verified; any other change
  is unverified until the user confirms it from allauth's mail, and a password
  reset only goes to a verified address (accounts.adapters).
"""

from __future__ import annotations

import re
from datetime import timedelta
from hmac import compare_digest

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from knox.crypto import hash_token
from knox.settings import CONSTANTS

from accounts.models import ActivityEvent, ApiToken, User


# --- activity log ----------------------------------------------------------------


def client_ip(request) -> str | None:
    if request is None:
        return None
    meta = getattr(request, "META", {})
    return meta.get("REMOTE_ADDR") or None


def activity_log(*, kind: str, user=None, actor=None, username: str = "", request=None, **details) -> ActivityEvent:
    meta = getattr(request, "META", {}) if request is not None else {}
    if user is not None and getattr(user, "pk", None) is None:
        user = None
    return ActivityEvent.objects.create(
        kind=kind,
        user=user,
        actor=actor if getattr(actor, "pk", None) else None,
        username=(username or (user.username if user else ""))[:150],
        ip=client_ip(request),
        user_agent=(meta.get("HTTP_USER_AGENT") or "")[:400],
        details=details,
    )


# --- rules ------------------------------------------------------------------------


def _require_admin(actor) -> None:
    if not (actor and actor.is_authenticated and actor.is_staff):
        raise PermissionDenied("Only administrators can manage users.")


def can_delete(*, actor, target) -> tuple[bool, str]:
    if not (actor and actor.is_staff):
        return False, "Only administrators can delete users."
    if target.is_superuser:
        return False, "The root account cannot be deleted."
    if target.pk == actor.pk:
        return False, "You cannot delete your own account."
    if target.is_staff and not actor.is_superuser:
        return False, "Only root can delete another administrator."
    return True, ""


def can_set_password(*, actor, target) -> tuple[bool, str]:
    if not (actor and actor.is_staff):
        return False, "Only administrators can change other users' passwords."
    if actor.is_superuser or target.pk == actor.pk:
        return True, ""
    if target.is_superuser:
        return False, "Only root can change the root password."
    if target.is_staff:
        return False, "Only root can change another administrator's password."
    return True, ""


def can_set_email(*, actor, target) -> tuple[bool, str]:
    if not (actor and actor.is_authenticated):
        return False, "Log in to change an e-mail address."
    if actor.is_superuser or target.pk == actor.pk:
        return True, ""
    if not actor.is_staff:
        return False, "You can only change your own e-mail address."
    if target.is_superuser:
        return False, "Only root can change the root account's e-mail address."
    if target.is_staff:
        return False, "Only root can change another administrator's e-mail address."
    return True, ""


def can_set_admin(*, actor, target=None) -> tuple[bool, str]:
    if not (actor and actor.is_superuser):
        return False, "Only root can grant or revoke the admin role."
    if target is not None and target.is_superuser:
        return False, "The root account's role cannot be changed."
    return True, ""


def _validate_password(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None


# --- users ------------------------------------------------------------------------


@transaction.atomic
def user_create(*, actor, username: str, email: str, password: str, is_admin: bool = False, request=None) -> User:
    _require_admin(actor)
    if is_admin:
        allowed, reason = can_set_admin(actor=actor)
        if not allowed:
            raise PermissionDenied(reason)
    username = (username or "").strip()
    email = (email or "").strip()
    user = User(username=username, email=email, is_staff=bool(is_admin))
    errors = user_create_problems(user=user, password=password)
    if errors:
        raise ValidationError(errors)
    user.set_password(password)
    user.save()
    email_record_initial(user=user)
    activity_log(kind=ActivityEvent.Kind.USER_CREATED, user=user, actor=actor, request=request, is_admin=bool(is_admin))
    if is_admin:
        activity_log(kind=ActivityEvent.Kind.ROLE_CHANGED, user=user, actor=actor, request=request, role="admin")
    return user


def user_create_problems(*, user: User, password: str) -> dict[str, list[str]]:
    """Everything wrong with a new user (all of it at once, so a form shows every fault in one round)."""
    username, email = user.username, user.email
    errors: dict[str, list[str]] = {}
    if not email:
        errors.setdefault("email", []).append("Enter an email address.")
    if username and User.objects.filter(username__iexact=username).exists():
        errors.setdefault("username", []).append("A user with that username already exists.")
    if email and User.objects.filter(email__iexact=email).exists():
        errors.setdefault("email", []).append("A user with that email address already exists.")
    try:
        user.full_clean(exclude=["password"], validate_constraints=False)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(m for m in messages if m not in errors.get(field, []))
    try:
        _validate_password(password or "", user)
    except ValidationError as exc:
        errors.setdefault("password", []).extend(exc.message_dict["password"])
    return errors


@transaction.atomic
def user_delete(*, actor, user: User, request=None) -> None:
    allowed, reason = can_delete(actor=actor, target=user)
    if not allowed:
        raise PermissionDenied(reason)
    username, user_id = user.username, user.pk
    user.delete()
    activity_log(
        kind=ActivityEvent.Kind.USER_DELETED, actor=actor, username=username, request=request, user_id=user_id
    )


@transaction.atomic
def user_set_password(*, actor, user: User, password: str, request=None) -> User:
    allowed, reason = can_set_password(actor=actor, target=user)
    if not allowed:
        raise PermissionDenied(reason)
    _validate_password(password or "", user)
    user.set_password(password)
    user.save(update_fields=["password"])
    activity_log(kind=ActivityEvent.Kind.PASSWORD_CHANGED, user=user, actor=actor, request=request, by_admin=True)
    return user


@transaction.atomic
def user_set_admin(*, actor, user: User, is_admin: bool, request=None) -> User:
    allowed, reason = can_set_admin(actor=actor, target=user)
    if not allowed:
        raise PermissionDenied(reason)
    if user.is_staff != bool(is_admin):
        user.is_staff = bool(is_admin)
        user.save(update_fields=["is_staff"])
        activity_log(
            kind=ActivityEvent.Kind.ROLE_CHANGED, user=user, actor=actor, request=request,
            role="admin" if is_admin else "user",
        )
    return user


def user_ensure_root(*, username: str, email: str, password: str | None) -> tuple[User, str | None, bool]:
    """Create the root account if none exists. Returns (root, generated password or None, created)."""
    existing = User.objects.filter(is_superuser=True).order_by("pk").first()
    if existing:
        return existing, None, False
    generated = None
    if not password:
        from django.utils.crypto import get_random_string

        generated = password = get_random_string(20)
    root = User(username=username, email=email, is_staff=True, is_superuser=True)
    root.set_password(password)
    root.full_clean(exclude=["password"])
    root.save()
    email_record_initial(user=root)
    activity_log(kind=ActivityEvent.Kind.USER_CREATED, user=root, username=username, root=True)
    return root, generated, True


# --- e-mail addresses ----------------------------------------------------------------


def email_record_initial(*, user: User) -> EmailAddress | None:
    """The address given when the account was created: the account's verified primary address."""
    if not user.email:
        return None
    address, _ = EmailAddress.objects.update_or_create(
        user=user, email__iexact=user.email, defaults={"email": user.email, "primary": True, "verified": True}
    )
    return address


def email_validate(*, email: str, user: User) -> str:
    """The cleaned address, or ValidationError({"email": …}) when malformed or someone else's."""
    email = (email or "").strip()
    if not email:
        raise ValidationError({"email": ["Enter an email address."]})
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": ["Enter a valid email address."]}) from None
    if len(email) > 254:
        raise ValidationError({"email": ["Ensure this value has at most 254 characters."]})
    taken = User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists() or (
        EmailAddress.objects.filter(email__iexact=email).exclude(user=user).exists()
    )
    if taken:
        raise ValidationError({"email": ["A user with that email address already exists."]})
    return email


def user_set_email(*, actor, user: User, email: str, request=None) -> User:
    """Change a user's e-mail address: verified when root sets it, otherwise confirmed by the user's mail."""
    allowed, reason = can_set_email(actor=actor, target=user)
    if not allowed:
        raise PermissionDenied(reason)
    email = email_validate(email=email, user=user)
    old = User.objects.filter(pk=user.pk).values_list("email", flat=True).first() or ""
    verified = bool(actor.is_superuser)
    with transaction.atomic():
        if old == email and EmailAddress.objects.filter(user=user, email=email, verified=True).exists():
            return user
        user.email = email
        user.save(update_fields=["email"])
        EmailAddress.objects.filter(user=user).delete()
        address = EmailAddress.objects.create(user=user, email=email, primary=True, verified=verified)
        activity_log(
            kind=ActivityEvent.Kind.EMAIL_CHANGED, user=user, actor=actor, request=request,
            old=old, new=email, verified=verified,
        )
        if not verified and request is not None:
            transaction.on_commit(lambda: _send_confirmation(address, request))
    return user


def _send_confirmation(address: EmailAddress, request) -> None:
    from allauth.core import context

    with context.request_context(request):
        address.send_confirmation(request)


def email_log_allauth(*, kind: str, user, request=None, **details) -> None:
    """E-mail changes made through allauth: the user's own page and mail link, or root's admin."""
    actor = getattr(request, "user", None)
    if not (actor is not None and actor.is_authenticated):
        actor = user
    activity_log(kind=kind, user=user, actor=actor, request=request, **details)


# --- two-factor authentication ------------------------------------------------------------


def two_factor_enrolled(*, user) -> bool:
    from allauth.mfa.utils import is_mfa_enabled

    return is_mfa_enabled(user)


def two_factor_verify(*, user, code: str) -> bool:
    """A current TOTP code (or an unused recovery code) of one of the user's authenticators."""
    from allauth.mfa.models import Authenticator

    code = (code or "").strip()
    if not code:
        return False
    return any(authenticator.wrap().validate_code(code) for authenticator in Authenticator.objects.filter(user=user))


# --- API tokens -------------------------------------------------------------------
#
# Keys are knox tokens: only their digest is stored, the key is returned once by
# `token_create`. Every password change or reset, deactivation, deletion and role
# change ends all of a user's tokens and open websockets (`user_credentials_end`,
# called by accounts.signals whatever saved the user).

TOKEN_NAME_MAX = 100
TOKEN_NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"
TOKEN_NAME_MESSAGE = "Give the token a name (what uses it), without control characters."
MAX_KEY_CHARS = 256


def token_lifetime_choices() -> list[int]:
    """Lifetimes offered by the token page (days), within API_TOKEN_MAX_DAYS."""
    longest = settings.API_TOKEN_MAX_DAYS
    days = sorted({d for d in (7, 30, 90, 365) if d <= longest} | {settings.API_TOKEN_DEFAULT_DAYS, longest})
    return days


def token_create(*, user: User, name: str, days: int | None = None, request=None) -> tuple[ApiToken, str]:
    """A new named token for `user`; returns it with its key (the only time the key exists in clear)."""
    name = name if isinstance(name, str) else ""
    errors: dict[str, list[str]] = {}
    if not re.fullmatch(TOKEN_NAME_PATTERN, name):
        errors["name"] = [TOKEN_NAME_MESSAGE]
    elif len(name) > TOKEN_NAME_MAX:
        errors["name"] = [f"The name may have at most {TOKEN_NAME_MAX} characters."]
    if days is None:
        days = settings.API_TOKEN_DEFAULT_DAYS
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= settings.API_TOKEN_MAX_DAYS:
        errors["days"] = [f"A token lives from 1 to {settings.API_TOKEN_MAX_DAYS} days."]
    if not (user and user.pk and user.is_active):
        raise PermissionDenied("Only active users hold API tokens.")
    if errors:
        raise ValidationError(errors)
    token, key = ApiToken.objects.create(user=user, expiry=timedelta(days=days), name=name.strip() or name)
    activity_log(
        kind=ActivityEvent.Kind.TOKEN_CREATED, user=user, actor=user, request=request,
        token_id=token.pk, name=name, expiry=token.expiry.isoformat(),
    )
    return token, key


def token_revoke(*, actor, token: ApiToken, request=None) -> None:
    """Owners revoke their own tokens; root anyone's."""
    if not (actor and actor.is_authenticated and (token.user_id == actor.pk or actor.is_superuser)):
        raise PermissionDenied("You can revoke only your own API tokens.")
    user, token_id, name = token.user, token.pk, token.name
    token.delete()
    activity_log(
        kind=ActivityEvent.Kind.TOKEN_REVOKED, user=user, actor=actor, request=request, token_id=token_id, name=name,
    )


def token_authenticate(*, key: str) -> ApiToken | None:
    """The live token of an active user with this key, or None. Marks it used (at most every API_TOKEN_LAST_USED_SECONDS)."""
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CHARS or not (key.isascii() and key.isalnum()):
        return None  # keys are hex: anything else is refused before the database sees it
    digest = hash_token(key)
    now = timezone.now()
    for token in ApiToken.objects.filter(token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH]).select_related("user"):
        if not compare_digest(digest, token.digest):
            continue
        if (token.expiry is not None and token.expiry <= now) or not token.user.is_active:
            return None
        stale = now - timedelta(seconds=settings.API_TOKEN_LAST_USED_SECONDS)
        if token.last_used_at is None or token.last_used_at < stale:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token
    return None


def user_credentials_end(*, user: User, reasons: list[str], deleting: bool = False) -> int:
    """End what was granted under the user's old credentials: every API token and open websocket.

    Sessions end by themselves: Django ties them to the password hash and drops inactive
    or deleted users; a role change applies to a session at its next request.
    `deleting`: called just before the user row goes (the log entry then names the user only).
    Returns how many tokens were revoked.
    """
    from core.services import user_sockets_close

    revoked = ApiToken.objects.filter(user_id=user.pk).delete()[0]
    if not deleting:
        User.objects.filter(pk=user.pk).update(auth_epoch=F("auth_epoch") + 1)
        user.auth_epoch = User.objects.filter(pk=user.pk).values_list("auth_epoch", flat=True).first() or 0
    if revoked:
        activity_log(
            kind=ActivityEvent.Kind.TOKEN_REVOKED, user=None if deleting else user, username=user.username,
            count=revoked, reason=", ".join(reasons), all_tokens=True,
        )
    user_id = user.pk
    transaction.on_commit(lambda: user_sockets_close(user_id=user_id))
    return revoked
