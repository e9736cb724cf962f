"""Answers the ETL API's operations share: a page of a list."""

from __future__ import annotations

from rest_framework.views import APIView

from core.api import paginated_response


def paginated(view: APIView, request, queryset, serializer_class):
    return paginated_response(view, request, queryset, lambda page: serializer_class(page, many=True).data)
