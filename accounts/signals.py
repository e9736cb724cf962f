"""Activity log receivers for what happens outside our services (logins, self-service password changes),
and the one place where power changes end a user's tokens and websockets."""

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
from django.db.models.signals import post_save, pre_delete, pre_save
from django.dispatch import receiver

from accounts.models import ActivityEvent, User
from accounts.services import activity_log, email_log_allauth, user_credentials_end


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


# --- power changes end tokens and websockets ------------------------------------------
#
# Here rather than in each route: whatever saves the user (the users page, the API, the
# admin, allauth's change and reset views, `manage.py changepassword`, the shell), a
# password change, deactivation or role change ends the user's API tokens and websockets.

_WATCHED = {"password", "is_active", "is_staff", "is_superuser"}


@receiver(pre_save, sender=User)
def note_credential_changes(sender, instance, raw=False, update_fields=None, **kwargs):
    instance._credential_changes = []
    if raw or instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and not (set(update_fields) & _WATCHED):
        return
    old = User.objects.filter(pk=instance.pk).values(*_WATCHED).first()
    if old is None:
        return
    changes = []
    # set_password() leaves the new raw password in `_password` until saved; Django's own
    # hash upgrade at login clears it first and saves only the password ("hash upgrades
    # shouldn't be considered password changes").
    rehash = instance._password is None and update_fields is not None and set(update_fields) == {"password"}
    if instance._password is not None or (old["password"] != instance.password and not rehash):
        changes.append("password changed")
    if old["is_active"] and not instance.is_active:
        changes.append("deactivated")
    if old["is_staff"] != instance.is_staff or old["is_superuser"] != instance.is_superuser:
        changes.append("role changed")
    instance._credential_changes = changes


@receiver(post_save, sender=User)
def end_credentials_on_change(sender, instance, created=False, raw=False, **kwargs):
    changes = instance.__dict__.pop("_credential_changes", None)
    if changes and not created and not raw:
        user_credentials_end(user=instance, reasons=changes)


@receiver(pre_delete, sender=User)
def end_credentials_on_delete(sender, instance, **kwargs):
    user_credentials_end(user=instance, reasons=["deleted"], deleting=True)


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
