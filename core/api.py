"""API plumbing shared by every app: error format and pagination."""

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.parsers import RequestBodyTooLarge


def exception_handler(exc, context):
    """JSON errors everywhere: field-level messages for validation, `detail` otherwise.

    Services raise Django's ValidationError / PermissionDenied; they become
    400 / 403 here so the API and the pages share one set of rules.
    """
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            exc = exceptions.ValidationError(exc.message_dict)
        else:
            exc = exceptions.ValidationError({"detail": exc.messages})
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):
        # Django's form parsing past DATA_UPLOAD_MAX_MEMORY_SIZE: a JSON 413, not its HTML 400 page.
        exc = RequestBodyTooLarge(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    elif isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        exc = exceptions.ParseError(str(exc))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(response.data, list):
        response.data = {"detail": response.data}
    return response


class ErrorSerializer(serializers.Serializer):
    """The body of every error that is not about one input field (the schema's `Error`)."""

    detail = serializers.CharField(help_text="What went wrong, in plain words.")


class ValidationErrorSerializer(serializers.Serializer):
    """The body of a 400: input name → messages (the schema's `ValidationError`, see core.schema)."""


def error_response(message: str, *, code: int = status.HTTP_400_BAD_REQUEST, **extra) -> Response:
    return Response({"detail": message, **extra}, status=code)


def job_cancel_response(*, job, by, noun: str, serialize) -> Response:
    """A cancel endpoint's answer: 409 when the job has already finished, else the cancelled (or
    cancelling) job, serialized, with 202."""
    from core.services import job_cancel

    if job.is_finished:
        return error_response(f"The {noun} has already {job.status}.", code=status.HTTP_409_CONFLICT)
    return Response(serialize(job_cancel(job=job, by=by)), status=status.HTTP_202_ACCEPTED)


class Pagination(PageNumberPagination):
    """Every paged list of the API: `?page=N` (from 1) and `?page_size=N` (1–500, default 50).

    A page size that is not a whole number in range is a 400, not silently the default;
    a page past the end (or not a positive whole number) is a 404, as in DRF.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    last_page_strings = ()

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"Give a whole number from 1 to {self.max_page_size}."]}
            )
        return size

    def get_schema_operation_parameters(self, view):
        page, page_size = super().get_schema_operation_parameters(view)
        page["schema"] = {"type": "integer", "minimum": 1}
        page_size["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return [page, page_size]


def paginated_response(view, request, items, serialize) -> Response:
    """One page of `items` in the view's pagination, each item serialized by `serialize(page)`.

    The view sets `pagination_class = Pagination` so that the schema documents the paged shape.
    """
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(items, request, view=view)
    return paginator.get_paginated_response(serialize(page))
