"""Deployment checks of the platform's own (`manage.py check --deploy`)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Tags, Warning, register

LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@register(Tags.security, deploy=True)
def redis_password_check(app_configs, **kwargs):
    """Redis shared by several hosts must ask for a password: the queue, live updates and rate limits live there."""
    url = getattr(settings, "REDIS_URL", "") or ""
    if not url:
        return []
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "unix" or host in LOOPBACK or host.startswith("127."):
        return []
    if parts.password:
        return []
    return [Warning(
        f"REDIS_URL points to {host} without a password.",
        hint="Redis must have a password when several hosts share it: set requirepass (or an ACL user) and "
             "use redis://:password@host:6379/0 or redis://user:password@host:6379/0.",
        id="platform.W001",
    )]
