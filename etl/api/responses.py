"""Answers the ETL API's operations share: a page of a list, a stored file."""

from __future__ import annotations

import mimetypes

from django.http import Http404, HttpResponse
from rest_framework.views import APIView

from core.api import paginated_response
from core.downloads import stored_file_response


def paginated(view: APIView, request, queryset, serializer_class):
    return paginated_response(view, request, queryset, lambda page: serializer_class(page, many=True).data)


def file_response(request, field, filename: str) -> HttpResponse:
    """A stored file as an attachment, streamed from the store with Range support; 404 when it is gone."""
    def missing():
        raise Http404("The file is no longer stored.")

    if not field:
        missing()
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return stored_file_response(request, name=field.name, filename=filename, content_type=content_type,
                                missing=missing)
