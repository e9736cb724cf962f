from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS


class Role(models.TextChoices):
    ROOT = "root", "Root"
    ADMIN = "admin", "Admin"
    USER = "user", "User"


class User(AbstractUser):
    """Root is the single superuser; admins are staff; everybody else is a user."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            models.UniqueConstraint(Lower("email"), condition=~Q(email=""), name="accounts_user_unique_email"),
            models.UniqueConstraint(Lower("username"), name="accounts_user_unique_username_ci"),
        ]

    #: Raised by one on every password change or reset, deactivation and role change
    #: (accounts.signals); open websockets compare it on each poll and close when it moved.
    auth_epoch = models.PositiveIntegerField(default=0, editable=False)

    @property
    def role(self) -> str:
        if self.is_superuser:
            return Role.ROOT
        if self.is_staff:
            return Role.ADMIN
        return Role.USER

    @property
    def role_label(self) -> str:
        return Role(self.role).label


class ActivityEvent(models.Model):
    """Activity and security log: who did what, from where."""

    class Kind(models.TextChoices):
        LOGIN = "login", "Login"
        LOGIN_FAILED = "login_failed", "Login failed"
        LOCKOUT = "lockout", "Locked out (too many failed logins)"
        LOGOUT = "logout", "Logout"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        USER_CREATED = "user_created", "User created"
        USER_DELETED = "user_deleted", "User deleted"
        ROLE_CHANGED = "role_changed", "Role changed"
        TOKEN_CREATED = "token_created", "API token created"
        TOKEN_REVOKED = "token_revoked", "API token revoked"
        EMAIL_CHANGED = "email_changed", "E-mail address changed"
        EMAIL_ADDED = "email_added", "E-mail address added (unconfirmed)"
        EMAIL_CONFIRMED = "email_confirmed", "E-mail address confirmed"
        EMAIL_REMOVED = "email_removed", "E-mail address removed"
        PASSWORD_RESET_REFUSED = "password_reset_refused", "Password reset not sent (unverified address)"

    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    # Whom the event is about, and who caused it (often the same person).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="activity_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True, help_text="Username as given (kept after deletion)")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.username} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class ApiToken(AbstractAuthToken):
    """A named API key (knox): only its SHA-512 digest is stored; the key is shown once at creation.

    `token_key` (the key's first characters, knox's lookup index) is part of the secret
    too: it is never shown, listed or logged. Tokens are addressed by `id`.
    """

    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=CONSTANTS.DIGEST_LENGTH, unique=True)
    name = models.CharField(max_length=100)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"
