"""The OpenAPI schema (drf-spectacular): component names, request media types and error responses.

Every operation documents the errors the platform's plumbing can answer with,
so a view only declares what is particular to it:

- 400 when the operation validates a body or query parameters;
- 401 when it needs an authenticated user; 403 when it can refuse one (a permission
  class beyond "authenticated", or an unsafe method, where session auth checks CSRF);
- 404 when it reads an object named in the path, or pages through a list;
- 413 and 415 when it takes a body (too large, or not a media type it parses).

Error bodies are JSON (core.api.exception_handler): `Error` (`{"detail": "…"}`)
or, for 400, `ValidationError` (field name → messages).
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import permissions
from rest_framework.settings import api_settings

VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "description": (
        "The request was refused as invalid. Each key names the input that is wrong (a field, or `detail` "
        "for the request as a whole) and holds a list of messages; a list or object input can hold its "
        "messages per item, keyed by position or key."
    ),
    "additionalProperties": {
        "oneOf": [
            {"type": "array", "items": {}},
            {"type": "object"},
            {"type": "string"},
        ]
    },
}
ERROR_DESCRIPTIONS = {
    "400": "The input is not valid.",
    "401": "No valid credentials were given.",
    "403": "The user may not do this.",
    "404": "Not found (or not visible to this user).",
    "409": "The object is not in a state that allows this.",
    "413": "The request body is larger than the limit.",
    "415": "The body is not in a media type this operation reads.",
    "429": "Too many attempts; try again later.",
}
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class AutoSchema(BaseAutoSchema):
    """Name nested Input/Output serializers after their view, so components never collide.

    `UserListCreateApi.InputSerializer` becomes the component `UserListCreateApiInput`.
    """

    def get_serializer_name(self, serializer, direction):
        cls = serializer.__class__
        if "." in cls.__qualname__ and "<locals>" not in cls.__qualname__:
            return cls.__qualname__.replace(".", "")
        return super().get_serializer_name(serializer, direction)

    def map_parsers(self):
        # Views that keep DRF's default parsers take JSON bodies: their inputs nest lists and
        # objects, which form encodings cannot carry. (The form parsers stay for flat inputs.)
        # Views that read uploads set parser_classes themselves and document each media type.
        if list(self.view.parser_classes) == list(api_settings.DEFAULT_PARSER_CLASSES):
            return ["application/json"]
        return super().map_parsers()

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "query" and not parameter.get("required"):
                _allow_blank(parameter)
        responses = operation.setdefault("responses", {})
        for code in self._error_codes(operation):
            if code not in responses:
                responses[code] = {
                    "content": {"application/json": {"schema": self._error_schema(code)}},
                    "description": ERROR_DESCRIPTIONS[code],
                }
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _error_schema(self, code: str) -> dict:
        from core.api import ErrorSerializer, ValidationErrorSerializer

        serializer = ValidationErrorSerializer() if code == "400" else ErrorSerializer()
        return self.resolve_serializer(serializer, "response").ref

    def _error_codes(self, operation: dict) -> list[str]:
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        codes = []
        if has_body or any(p.get("in") == "query" for p in parameters):
            codes.append("400")
        needs_auth = not all(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions())
        if needs_auth:
            codes.append("401")
            extra_rules = any(
                not isinstance(p, permissions.IsAuthenticated) for p in self.view.get_permissions()
            )
            if extra_rules or self.method not in _SAFE_METHODS:
                codes.append("403")
        if any(p.get("in") == "path" for p in parameters) or self._get_paginator() is not None:
            codes.append("404")
        if has_body:
            codes += ["413", "415"]
        return codes


def _allow_blank(parameter: dict) -> None:
    """An optional query filter given empty (`?kind=`) means "not given": DRF reads form-style input so."""
    schema = parameter.get("schema", {})
    if schema.get("type") != "string":
        return
    if "enum" in schema or schema.get("minLength") == 1:
        schema.pop("minLength", None)
        if "enum" in schema and "" not in schema["enum"]:
            schema["enum"] = [*schema["enum"], ""]
    elif "format" in schema or "pattern" in schema:
        parameter["schema"] = {"anyOf": [schema, {"type": "string", "maxLength": 0}]}
    else:
        return
    parameter["description"] = (parameter.get("description", "") + "\n\nEmpty means not given.").strip()


class ValidationErrorSchema(OpenApiSerializerExtension):
    """`core.api.ValidationErrorSerializer` documents a shape a serializer cannot state (keys are field names)."""

    target_class = "core.api.ValidationErrorSerializer"

    def map_serializer(self, auto_schema, direction):
        return VALIDATION_ERROR_SCHEMA
