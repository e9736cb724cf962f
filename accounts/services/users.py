"""Users and their roles: creating, deleting, passwords, the admin role, and the root account."""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.models import ActivityEvent, User
from accounts.services.activity import activity_log
from accounts.services.email_addresses import email_record_initial
from accounts.services.rules import can_delete, can_set_admin, can_set_password, require_admin


def _validate_password(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None


@transaction.atomic
def user_create(*, actor, username: str, email: str, password: str, is_admin: bool = False, request=None) -> User:
    require_admin(actor)
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
