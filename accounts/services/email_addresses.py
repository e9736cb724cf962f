"""E-mail addresses: the one given at sign-up, changes under the password rules, and their log."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction

from accounts.models import ActivityEvent, User
from accounts.services.activity import activity_log
from accounts.services.rules import can_set_email


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
