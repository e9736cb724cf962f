"""Ownership rules shared by every domain: a user sees their own objects, staff see all.

The one lookup idiom: each model's visibility selector (`<entity>_get_for_viewer` in its app's
selectors, built on `visible_to` + `get_for_viewer`) answers the object or None, and pages and API views
turn None into a 404 with `found_or_404`; websockets close 4404.
"""

from django.db.models import QuerySet
from django.http import Http404
from rest_framework import permissions


def visible_to(queryset: QuerySet, user, *, owner_field: str = "owner") -> QuerySet:
    if not user or not user.is_authenticated:
        return queryset.none()
    if user.is_staff:
        return queryset
    return queryset.filter(**{owner_field: user})


MAX_PK = 2**63 - 1


def pk_or_none(pk) -> int | None:
    """A primary key from untrusted input (URL kwargs, JSON), or None when it is not one."""
    try:
        value = int(pk)
    except (TypeError, ValueError, OverflowError):
        return None
    return value if 0 < value <= MAX_PK else None


def get_for_viewer(queryset: QuerySet, pk):
    """One object of a visibility selector's queryset, or None (unknown, not visible, not a key)."""
    value = pk_or_none(pk)
    return None if value is None else queryset.filter(pk=value).first()


def found_or_404(obj):
    """Pages and API views: a visibility selector's None is a 404 (no existence leak)."""
    if obj is None:
        raise Http404("Not found.")
    return obj


def can_manage(user, obj, *, owner_field: str = "owner") -> bool:
    return bool(user and user.is_authenticated and (user.is_staff or getattr(obj, f"{owner_field}_id") == user.pk))


class IsStaff(permissions.BasePermission):
    message = "Only administrators can do this."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class IsOwnerOrStaff(permissions.BasePermission):
    message = "You can only access your own objects."

    def has_object_permission(self, request, view, obj):
        return can_manage(request.user, obj)


def staff_required(view):
    """A page for administrators: a visitor who is not logged in is sent to the login page; a logged-in user who
    is not an administrator gets the platform's 403 page (templates/403.html), not the admin site's login."""
    from functools import wraps

    from django.contrib.auth.views import redirect_to_login
    from django.core.exceptions import PermissionDenied

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied("This page is for administrators.")
        return view(request, *args, **kwargs)

    return wrapped
