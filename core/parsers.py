"""Request body parsing for the API: JSON bounded in size and nesting depth (DRF's default parser).

DRF's own JSONParser reads the whole body (Django's DATA_UPLOAD_MAX_MEMORY_SIZE only guards
`request.body`) and lets `json` recurse until a RecursionError, which is a 500.
"""

from __future__ import annotations

import re
from itertools import accumulate

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.settings import api_settings
from rest_framework.utils import json

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def body_too_large_message(limit: int) -> str:
    return f"The request body is too large; the limit is {limit:,} bytes."


class RequestBodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_body_too_large"

    def __init__(self, limit: int):
        super().__init__(body_too_large_message(limit))


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in the JSON `text` (strings skipped); no recursion, no parsing."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(_STEP[ch] for ch in brackets), default=0)


class BoundedJSONParser(JSONParser):
    """JSON bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE bytes (413 beyond) and API_MAX_JSON_DEPTH levels (400 beyond)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestBodyTooLarge(limit)
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        max_depth = settings.API_MAX_JSON_DEPTH
        if json_depth(text) > max_depth:
            raise exceptions.ParseError(
                f"JSON parse error - the document nests arrays and objects more than {max_depth} levels deep."
            )
        try:
            parse_constant = json.strict_constant if api_settings.STRICT_JSON else None
            return json.loads(text, parse_constant=parse_constant)
        except (ValueError, RecursionError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
