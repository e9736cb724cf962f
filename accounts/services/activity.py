"""The activity and security log: who did what, from where."""

from __future__ import annotations

from accounts.models import ActivityEvent


def client_ip(request) -> str | None:
    if request is None:
        return None
    meta = getattr(request, "META", {})
    return meta.get("REMOTE_ADDR") or None


def activity_log(*, kind: str, user=None, actor=None, username: str = "", request=None, **details) -> ActivityEvent:
    meta = getattr(request, "META", {}) if request is not None else {}
    if user is not None and getattr(user, "pk", None) is None:
        user = None
    return ActivityEvent.objects.create(
        kind=kind,
        user=user,
        actor=actor if getattr(actor, "pk", None) else None,
        username=(username or (user.username if user else ""))[:150],
        ip=client_ip(request),
        user_agent=(meta.get("HTTP_USER_AGENT") or "")[:400],
        details=details,
    )
