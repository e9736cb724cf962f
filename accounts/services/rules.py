"""Who may manage which account: the rules the user page, the admin and the API share."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied


def require_admin(actor) -> None:
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
