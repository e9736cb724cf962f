"""Streaming a stored export with HTTP Range support (206 / 416, If-Range, ETag).

One single byte range per request (RFC 9110 lets a server answer a
multi-range request with the whole file); that is what browsers' resume and
`curl -C -` send.
"""

from __future__ import annotations

import re
from email.utils import formatdate

from django.core.files.storage import default_storage
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header, http_date

from trades.models import FORMAT_CONTENT_TYPES, Export

CHUNK = 1 << 20
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _stream(name: str, start: int, length: int):
    with default_storage.open(name, "rb") as fh:
        fh.seek(start)
        remaining = length
        while remaining > 0:
            block = fh.read(min(CHUNK, remaining))
            if not block:
                break
            remaining -= len(block)
            yield block


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
        if suffix == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        return "unsatisfiable"
    return start, end


def export_file_response(request, *, export: Export) -> HttpResponse:
    name = export.file_name
    size = export.size_bytes if export.size_bytes is not None else default_storage.size(name)
    etag = f'"{export.sha256}"' if export.sha256 else f'"{export.pk}-{size}"'
    modified = export.finished_at.timestamp() if export.finished_at else None
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Content-Disposition": content_disposition_header(True, export.download_filename),
        "Cache-Control": "private, no-transform",
    }
    if modified:
        headers["Last-Modified"] = http_date(modified)
    content_type = FORMAT_CONTENT_TYPES.get(export.format, "application/octet-stream")

    if request.headers.get("If-None-Match") == etag and "Range" not in request.headers:
        response = HttpResponse(status=304)
        for key in ("ETag", "Accept-Ranges", "Cache-Control"):
            response[key] = headers[key]
        return response

    range_header = request.headers.get("Range")
    if range_header and request.headers.get("If-Range"):
        if_range = request.headers["If-Range"].strip()
        # A strong ETag match (or the exact Last-Modified date) keeps the range; else send everything.
        if if_range != etag and not (modified and if_range == formatdate(modified, usegmt=True)):
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
        response = StreamingHttpResponse(_stream(name, start, length), status=status, content_type=content_type)
    for key, value in headers.items():
        response[key] = value
    response["Content-Length"] = str(length)
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response
