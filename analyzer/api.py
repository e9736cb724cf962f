"""REST API (DRF, token auth): upload, list, read, delete sessions; download a query result."""

from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from analyzer import selectors, services
from analyzer.serializers import (
    SessionDetailSerializer,
    SessionListItemSerializer,
    UploadInputSerializer,
    UploadOutputSerializer,
    upload_too_large,
)
from analyzer.uploads import TOO_LARGE_ATTR, install_size_limit, too_large_message
from core.api import Pagination, paginated_response
from analyzer.views_common import query_result_csv_response, session_detail_payload, upload_payload


class UploadApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    def initialize_request(self, request, *args, **kwargs):
        install_size_limit(request)
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(request=UploadInputSerializer, responses={202: UploadOutputSerializer})
    def post(self, request):
        """Store the file and queue its processing; answers 202 at once with the session and its job.

        Follow the job on `processing.websocket` (or poll the session): `status` becomes `ready`
        (file info filled in, auto-analysis started) or `failed` with the reason in `error`.
        """
        too_large = upload_too_large(request.META.get("CONTENT_LENGTH"))
        if too_large:
            return Response({"file": [too_large]}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        serializer = UploadInputSerializer(data=request.data)
        if getattr(request._request, TOO_LARGE_ATTR, False):
            return Response({"file": [too_large_message()]}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        serializer.is_valid(raise_exception=True)
        session = services.session_create_from_upload(
            owner=request.user, upload=serializer.validated_data["file"],
            auto_analyze=serializer.validated_data["auto_analyze"],
        )
        return Response(UploadOutputSerializer(upload_payload(session=session)).data, status=status.HTTP_202_ACCEPTED)


class SessionListApi(APIView):
    pagination_class = Pagination

    @extend_schema(responses=SessionListItemSerializer(many=True))
    def get(self, request):
        return paginated_response(self, request, selectors.session_list(user=request.user),
                                  lambda page: SessionListItemSerializer(page, many=True).data)


class SessionDetailApi(APIView):
    @extend_schema(responses=SessionDetailSerializer)
    def get(self, request, pk: int):
        session = selectors.session_get(user=request.user, pk=pk)
        return Response(SessionDetailSerializer(session_detail_payload(session=session)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        session = selectors.session_get(user=request.user, pk=pk)
        services.session_delete(session=session)
        return Response(status=status.HTTP_204_NO_CONTENT)


class QueryResultCsvApi(APIView):
    @extend_schema(responses={(200, "text/csv"): bytes})
    def get(self, request, pk: int, message_id: int) -> StreamingHttpResponse:
        session = selectors.session_get(user=request.user, pk=pk)
        return query_result_csv_response(session=session, message_id=message_id)
