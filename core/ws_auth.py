"""Websocket authentication and origin checks."""

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser


@database_sync_to_async
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


class TokenAuthMiddleware:
    """API clients authenticate with `?token=KEY` or an `Authorization: Token|Bearer KEY` header."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            key = parse_qs(scope.get("query_string", b"").decode()).get("token", [""])[0]
            for name, value in scope.get("headers", []):
                if name == b"authorization":
                    parts = value.decode().split()
                    if len(parts) == 2 and parts[0].lower() in ("token", "bearer"):
                        key = parts[1]
            if key:
                scope = dict(scope, user=await _user_for_token(key) or AnonymousUser())
        return await self.inner(scope, receive, send)


class BrowserOriginValidator(OriginValidator):
    """Browsers send Origin and must match the allowed hosts; non-browser clients
    (which cannot be driven by a hostile page) send none and authenticate by token."""

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


def websocket_stack(inner):
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG:
        hosts += ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(AuthMiddlewareStack(TokenAuthMiddleware(inner)), hosts)



