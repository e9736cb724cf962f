"""Serving a stored file: streamed from the store (local disk or S3) with Range / If-Range / ETag.

The platform streams rather than redirecting to a presigned S3 URL: the permission check, the
resume rules and the headers stay the same on every store, browsers never talk to the store (which
may not be reachable from them), and no link that works without a login ever leaves the platform.

Nothing is sent before the file is known to open: the object is looked up and the asked byte range
opened first; a missing object is the caller's `missing()` answer (a clear 404/410 page), never a
200 that then resets.

One single byte range per request (RFC 9110 lets a server answer a multi-range request with the
whole file); that is what browsers' resume and `curl -C -` send.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import formatdate

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header, http_date

from core.storage import StoredRange, stored_open_range, stored_stat

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """(start, end inclusive), None to ignore the header, or "unsatisfiable"."""
    header = header.strip()
    if "," in header:
        return None  # several ranges: answer with the whole file
    match = RANGE_RE.match(header.replace(" ", ""))
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        return "unsatisfiable"
    return start, end


class _AsyncChunks:
    """The chunks of a StoredRange for an ASGI server, read in a thread one at a time (Django would
    otherwise read a synchronous iterator whole into memory before sending a byte)."""

    def __init__(self, opened: StoredRange):
        self.opened = opened
        self._iter = iter(opened)

    def _next(self):
        return next(self._iter, None)

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        block = await sync_to_async(self._next, thread_sensitive=False)()
        if block is None:
            raise StopAsyncIteration
        return block

    def close(self) -> None:
        self.opened.close()


def stored_file_response(
    request, *, name: str, filename: str, content_type: str, missing: Callable[[], HttpResponse],
    etag: str | None = None, modified: float | None = None,
) -> HttpResponse:
    """Answer GET/HEAD for the stored object `name` as an attachment named `filename`.

    `etag` (without quotes; e.g. a content hash the row knows) defaults to the store's version of the
    object; `modified` (a timestamp) to the store's modified time.
    """
    try:
        stat = stored_stat(name)
    except FileNotFoundError:
        return missing()
    size = stat.size
    etag = f'"{etag or stat.version}"'
    modified = modified if modified is not None else stat.modified.timestamp()
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Content-Disposition": content_disposition_header(True, filename),
        "Cache-Control": "private, no-transform",
        "Last-Modified": http_date(modified),
    }

    if request.headers.get("If-None-Match") == etag and "Range" not in request.headers:
        response = HttpResponse(status=304)
        for key in ("ETag", "Accept-Ranges", "Cache-Control"):
            response[key] = headers[key]
        return response

    range_header = request.headers.get("Range")
    if range_header and request.headers.get("If-Range"):
        if_range = request.headers["If-Range"].strip()
        # A strong ETag match (or the exact Last-Modified date) keeps the range; else send everything.
        if if_range != etag and if_range != formatdate(modified, usegmt=True):
            range_header = None
    byte_range = parse_range(range_header, size) if range_header else None
    if byte_range == "unsatisfiable":
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        response["ETag"] = etag
        return response
    if byte_range is None:
        start, end, status = 0, size - 1, 200
    else:
        start, end = byte_range
        status = 206
    length = max(0, end - start + 1)
    if request.method == "HEAD":
        response = HttpResponse(status=status, content_type=content_type)
    else:
        try:
            opened = stored_open_range(name, start, length)
        except FileNotFoundError:  # deleted between the lookup and now
            return missing()
        content = _AsyncChunks(opened) if isinstance(request, ASGIRequest) else opened
        response = StreamingHttpResponse(content, status=status, content_type=content_type)
    for key, value in headers.items():
        response[key] = value
    response["Content-Length"] = str(length)
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response
