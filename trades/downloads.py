"""Downloading a stored export: core's streamed download (Range / If-Range / ETag), with the export's
content hash as its ETag and its finish time as Last-Modified.

A file the store no longer holds is a 410 page saying so; the export is not marked expired here (the
next request of the same export asks the store again and builds a new one if it is really gone).
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render

from core.downloads import parse_range, stored_file_response
from trades.models import FORMAT_CONTENT_TYPES, Export

__all__ = ["export_file_response", "parse_range"]

MISSING_MESSAGE = "This export's file is no longer in storage; run the export again."


def export_file_response(request, *, export: Export, missing=None) -> HttpResponse:
    def file_missing() -> HttpResponse:
        if missing is not None:
            return missing()
        return render(request, "trades/partials/resume.html", {"message": MISSING_MESSAGE, "standalone": True},
                      status=410)

    return stored_file_response(
        request,
        name=export.file_name,
        filename=export.download_filename,
        content_type=FORMAT_CONTENT_TYPES.get(export.format, "application/octet-stream"),
        missing=file_missing,
        etag=export.sha256 or None,
        modified=export.finished_at.timestamp() if export.finished_at else None,
    )
