"""Django's ASGI handler with a bound on request bodies.

Django's own handler reads the whole body into a temporary file before any view or limit
sees it, and leaves CONTENT_LENGTH unset for a chunked body (then DRF and Django's form parser
see an empty body). This one:
- answers a JSON 413 at once when the declared Content-Length is over REQUEST_MAX_BODY_BYTES,
  without reading the body;
- counts a body without Content-Length (Transfer-Encoding: chunked) while receiving it, keeps
  nothing beyond the limit and answers the same 413 (it reads and drops up to
  DRAIN_BYTES more so the client gets the answer, then stops reading);
- gives a chunked body that fits its real size as CONTENT_LENGTH, so every route applies its
  own, smaller limit to it as to any other body.
"""

from __future__ import annotations

import json
import tempfile

from django.conf import settings
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.http import HttpResponse

from core.parsers import body_too_large_message

DRAIN_BYTES = 16 * 1024 * 1024


def body_too_large_response(limit: int) -> HttpResponse:
    return HttpResponse(json.dumps({"detail": body_too_large_message(limit)}), status=413,
                        content_type="application/json")


def _declared_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BoundedASGIRequest(ASGIRequest):
    def __init__(self, scope, body_file):
        super().__init__(scope, body_file)
        received = getattr(body_file, "received", 0)
        if "CONTENT_LENGTH" not in self.META and received:
            self.META["CONTENT_LENGTH"] = str(received)


class BoundedASGIHandler(ASGIHandler):
    request_class = BoundedASGIRequest

    async def handle(self, scope, receive, send):
        limit = settings.REQUEST_MAX_BODY_BYTES
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self.send_response(body_too_large_response(limit), send)
            return
        await super().handle(scope, receive, send)

    async def read_body(self, receive):
        limit = settings.REQUEST_MAX_BODY_BYTES
        body_file = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b")
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                body_file.close()
                raise RequestAborted()
            chunk = message.get("body", b"")
            received += len(chunk)
            if received <= limit:
                body_file.write(chunk)
            elif received > limit + DRAIN_BYTES:
                break
            if not message.get("more_body", False):
                break
        body_file.seek(0)
        body_file.received = received
        return body_file

    def create_request(self, scope, body_file):
        limit = settings.REQUEST_MAX_BODY_BYTES
        if getattr(body_file, "received", 0) > limit:
            return None, body_too_large_response(limit)
        return super().create_request(scope, body_file)
