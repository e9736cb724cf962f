"""Answers the ETL API's operations share: a page of a list, a stored file."""

from __future__ import annotations

from django.http import FileResponse, Http404
from rest_framework.views import APIView

from core.api import paginated_response


def paginated(view: APIView, request, queryset, serializer_class):
    return paginated_response(view, request, queryset, lambda page: serializer_class(page, many=True).data)


def file_response(field, filename: str) -> FileResponse:
    try:
        handle = field.open("rb")
    except (FileNotFoundError, OSError, ValueError):
        raise Http404("The file is no longer stored.") from None
    return FileResponse(handle, as_attachment=True, filename=filename)
