"""API tokens, and ending every credential a user holds.

Keys are knox tokens: only their digest is stored, the key is returned once by
`token_create`. Every password change or reset, deactivation, deletion and role
change ends all of a user's tokens and open websockets (`user_credentials_end`,
called by accounts.signals whatever saved the user).
"""

from __future__ import annotations

import re
from datetime import timedelta
from hmac import compare_digest

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from knox.crypto import hash_token
from knox.settings import CONSTANTS

from accounts.models import ActivityEvent, ApiToken, User
from accounts.services.activity import activity_log

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
