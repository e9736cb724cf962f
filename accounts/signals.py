"""Activity log receivers for what happens outside our services (logins, self-service password changes)."""

from allauth.account.signals import (
    email_added,
    email_changed,
    email_confirmed,
    email_removed,
    password_changed,
    password_reset,
    password_set,
)
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts.models import ActivityEvent
from accounts.services import activity_log, email_log_allauth


@receiver(user_logged_in)
def on_login(sender, request, user, **kwargs):
    activity_log(kind=ActivityEvent.Kind.LOGIN, user=user, actor=user, request=request)


@receiver(user_login_failed)
def on_login_failed(sender, credentials, request=None, **kwargs):
    username = credentials.get("username") or credentials.get("email") or ""
    activity_log(kind=ActivityEvent.Kind.LOGIN_FAILED, username=str(username), request=request)


@receiver(user_logged_out)
def on_logout(sender, request, user, **kwargs):
    if user is not None:
        activity_log(kind=ActivityEvent.Kind.LOGOUT, user=user, actor=user, request=request)


@receiver(password_changed)
@receiver(password_set)
@receiver(password_reset)
def on_password_changed(sender, request, user, **kwargs):
    activity_log(kind=ActivityEvent.Kind.PASSWORD_CHANGED, user=user, actor=user, request=request, by_admin=False)


# allauth's e-mail page: a user manages their own address; a new one counts once confirmed.


@receiver(email_added)
def on_email_added(sender, request, user, email_address, **kwargs):
    email_log_allauth(
        kind=ActivityEvent.Kind.EMAIL_ADDED, user=user, request=request, new=email_address.email, via="email page"
    )


@receiver(email_confirmed)
def on_email_confirmed(sender, request, email_address, **kwargs):
    email_log_allauth(
        kind=ActivityEvent.Kind.EMAIL_CONFIRMED, user=email_address.user, request=request, new=email_address.email
    )


@receiver(email_changed)
def on_email_changed(sender, request, user, from_email_address, to_email_address, **kwargs):
    email_log_allauth(
        kind=ActivityEvent.Kind.EMAIL_CHANGED, user=user, request=request,
        old=from_email_address.email if from_email_address else "", new=to_email_address.email,
        verified=to_email_address.verified,
    )


@receiver(email_removed)
def on_email_removed(sender, request, user, email_address, **kwargs):
    email_log_allauth(kind=ActivityEvent.Kind.EMAIL_REMOVED, user=user, request=request, old=email_address.email)
