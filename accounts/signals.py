"""Activity log receivers for what happens outside our services (logins, self-service password changes)."""

from allauth.account.signals import password_changed, password_reset, password_set
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts.models import ActivityEvent
from accounts.services import activity_log


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
