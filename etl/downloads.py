"""A stored ETL file (a fetched raw file, a record export) as a download, for the pages and the API."""

from __future__ import annotations

import mimetypes

from django.http import Http404, HttpResponse

from core.downloads import stored_file_response


def file_response(request, field, filename: str) -> HttpResponse:
    """A stored file as an attachment, streamed from the store with Range support; 404 when it is gone."""
    def missing():
        raise Http404("The file is no longer stored.")

    if not field:
        missing()
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return stored_file_response(request, name=field.name, filename=filename, content_type=content_type,
                                missing=missing)
