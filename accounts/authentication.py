from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from accounts import services

SCHEMES = (b"token", b"bearer")


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's hashed tokens, sent as `Authorization: Token KEY` or `Bearer KEY`.

    The check itself is `accounts.services.token_authenticate` (shared with the
    websockets): live, unexpired, of an active user; it marks the token used.
    """

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() not in SCHEMES:
            return None  # another scheme (or none): not ours
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: send `Token KEY` or `Bearer KEY`.")
        return self.authenticate_credentials(header[1])

    def authenticate_credentials(self, token):
        try:
            key = token.decode("ascii") if isinstance(token, bytes) else str(token)
        except UnicodeDecodeError:
            key = ""
        found = services.token_authenticate(key=key)
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid or expired token.")
        return found.user, found


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes it (drf-spectacular's knox extension matches knox's class only)."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "An API token: `Token KEY` or `Bearer KEY` (make one at /api/auth/token/ or on the token page).",
        }
