"""Websocket origin check and authentication.

Browsers always send `Origin`; it must be the server's own origin (scheme, host and
port, the host one of ALLOWED_HOSTS) or one of CSRF_TRUSTED_ORIGINS, else the
handshake is refused (HTTP 403). Browser pages authenticate with the session cookie.

Programs send no `Origin`, and then the cookie is ignored: they authenticate with a
token, never in the URL (URLs end up in access logs), in one of two ways:

- the header `Authorization: Token KEY` (or `Bearer KEY`);
- the subprotocols `platform.v1` and `token.KEY` (`Sec-WebSocket-Protocol: platform.v1,
  token.KEY`), for clients that cannot set headers. The server answers `platform.v1`,
  never the token, and consumers never see the token subprotocol.

What a connection was granted is kept in `scope["credentials"]`; the stream consumers
re-check it on every poll (`credentials_valid`), and every consumer of a user is in the
group `core.services.user_group(pk)` that closes them at once when the user's power
changes (accounts.signals).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q
from django.http.request import split_domain_port, validate_host
from django.utils import timezone

SUBPROTOCOL = "platform.v1"
TOKEN_SUBPROTOCOL_PREFIX = "token."
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Stands for credentials that were offered but malformed: authenticates nobody, and keeps
#: the connection from falling back to the session cookie.
MALFORMED = "!"


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value
    return None


def _origin_tuple(value: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") or parts.query:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG:
        hosts += ["localhost", "127.0.0.1", "[::1]"]
    return hosts


def origin_allowed(scope, origin: bytes) -> bool:
    """Same scheme, host and port as the request itself (the host allowed), or a trusted origin."""
    try:
        candidate = _origin_tuple(origin.decode("ascii"))
    except UnicodeDecodeError:
        return False
    if candidate is None:
        return False
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        if _origin_tuple(trusted) == candidate:
            return True
    host = _header(scope, b"host")
    if host is None:
        return False
    try:
        host = host.decode("ascii")
    except UnicodeDecodeError:
        return False
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    own = _origin_tuple(f"{scheme}://{host}")
    domain, _ = split_domain_port(host)
    return own is not None and own == candidate and bool(domain) and validate_host(domain, allowed_hosts())


def _offered_credentials(scope) -> tuple[str, list[str]]:
    """(token key or "", the subprotocols without the token one)."""
    key = ""
    header = _header(scope, b"authorization")
    if header is not None:
        parts = header.decode("latin1").split()
        if len(parts) == 2 and parts[0].lower() in ("token", "bearer"):
            key = parts[1]
        else:
            key = MALFORMED
    protocols = []
    for protocol in scope.get("subprotocols") or []:
        if protocol.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            key = key or protocol[len(TOKEN_SUBPROTOCOL_PREFIX):] or MALFORMED
        else:
            protocols.append(protocol)
    return key, protocols


@database_sync_to_async
def _token_credentials(key: str):
    from accounts.services import token_authenticate

    token = token_authenticate(key=key)
    if token is None:
        return AnonymousUser(), None
    user = token.user
    return user, {"user_id": user.pk, "epoch": user.auth_epoch, "token_id": token.pk, "session_key": None}


def credentials_valid(credentials: dict | None) -> bool:
    """Is what this connection was granted still in force? (sync; one or two small queries)."""
    if not credentials:
        return False
    from accounts.models import ApiToken, User

    if credentials.get("token_id") is not None:
        now = timezone.now()
        return ApiToken.objects.filter(
            Q(expiry__isnull=True) | Q(expiry__gt=now),
            pk=credentials["token_id"], user_id=credentials["user_id"],
            user__is_active=True, user__auth_epoch=credentials["epoch"],
        ).exists()
    if not User.objects.filter(pk=credentials["user_id"], is_active=True, auth_epoch=credentials["epoch"]).exists():
        return False
    session_key = credentials.get("session_key")
    if not session_key:
        return False
    from importlib import import_module

    return import_module(settings.SESSION_ENGINE).SessionStore().exists(session_key)


class TokenAuthMiddleware:
    """A token (header or subprotocol) decides the user when given; otherwise the session does."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        key, protocols = _offered_credentials(scope)
        credentials = None
        if key:
            user, credentials = await _token_credentials(key)
        else:
            user = scope.get("user") or AnonymousUser()
            if user.is_authenticated:
                session = scope.get("session")
                credentials = {
                    "user_id": user.pk, "epoch": user.auth_epoch, "token_id": None,
                    "session_key": getattr(session, "session_key", None),
                }
        scope = dict(scope, user=user, credentials=credentials, subprotocols=protocols)
        offered = SUBPROTOCOL in protocols

        async def send_with_protocol(message):
            if message.get("type") == "websocket.accept" and offered and not message.get("subprotocol"):
                message = {**message, "subprotocol": SUBPROTOCOL}
            await send(message)

        return await self.inner(scope, receive, send_with_protocol)


class OriginGuard:
    """Refuse foreign browser origins; without an Origin (not a browser) drop the cookie."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        origin = _header(scope, b"origin")
        if origin is not None:
            if not origin_allowed(scope, origin):
                return await WebsocketDenier()(scope, receive, send)
        else:
            scope = dict(scope, headers=[(k, v) for k, v in scope.get("headers", []) if k != b"cookie"])
        return await self.inner(scope, receive, send)


def websocket_stack(inner):
    return OriginGuard(AuthMiddlewareStack(TokenAuthMiddleware(inner)))
