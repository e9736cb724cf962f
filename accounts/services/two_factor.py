"""Two-factor authentication (allauth's TOTP): whether a user has it, and checking a code."""

from __future__ import annotations


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
