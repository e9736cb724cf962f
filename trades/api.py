"""REST API of trades: thin views that validate, call one service/selector, serialize."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer, Pagination, error_response, paginated_response
from core.permissions import found_or_404
from trades import expressions, selectors, services, slots
from trades.downloads import export_file_response
from trades.models import FORMAT_CONTENT_TYPES, Export
from trades.serializers import (
    ExchangeSerializer,
    ExportRequestSerializer,
    ExportSerializer,
    PreviewRequestSerializer,
)


class ExchangeListApi(APIView):
    @extend_schema(responses=ExchangeSerializer(many=True))
    def get(self, request):
        return Response(ExchangeSerializer(selectors.exchange_list(), many=True).data)


class TickerListApi(APIView):
    @extend_schema(responses=inline_serializer("TickerList", {"tickers": serializers.ListField()}))
    def get(self, request):
        return Response({"tickers": selectors.ticker_list()})


PREVIEW_PAGE = inline_serializer(
    "PreviewPage",
    {
        "columns": serializers.ListField(child=serializers.CharField()),
        "rows": serializers.ListField(child=serializers.ListField(), help_text="One list of values per row"),
        "estimated_rows": serializers.IntegerField(),
        "estimate_capped": serializers.BooleanField(),
        "next_cursor": serializers.CharField(allow_null=True, help_text="Give it back as `cursor` for the next page"),
    },
)


class PreviewApi(APIView):
    @extend_schema(request=PreviewRequestSerializer, responses=PREVIEW_PAGE)
    def post(self, request):
        serializer = PreviewRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            page = selectors.export_preview(
                params=serializer.to_params(), cursor=serializer.validated_data.get("cursor") or None
            )
        except selectors.CursorError as exc:
            return Response({"cursor": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(page)


class ExportListCreateApi(APIView):
    pagination_class = Pagination

    @extend_schema(responses=ExportSerializer(many=True))
    def get(self, request):
        """The user's exports, newest first, paged like every list of the API."""
        return paginated_response(
            self, request, selectors.export_list(user=request.user).select_related(None),
            lambda page: ExportSerializer(slots.queue_positions_attach(page), many=True).data)

    @extend_schema(
        request=ExportRequestSerializer,
        responses={
            200: OpenApiResponse(ExportSerializer, description="The same export exists already (`outcome`)"),
            202: OpenApiResponse(ExportSerializer, description="Queued"),
            409: OpenApiResponse(ErrorSerializer, description="Too many exports are running for this user"),
        },
    )
    def post(self, request):
        serializer = ExportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            result = services.export_request(user=request.user, params=serializer.to_params())
        except services.ExportConflict as exc:
            return error_response(str(exc), code=status.HTTP_409_CONFLICT)
        data = ExportSerializer(result.export).data
        data["outcome"] = result.outcome
        code = status.HTTP_200_OK if result.outcome == "existing" else status.HTTP_202_ACCEPTED
        return Response(data, status=code)


def _export_for(request, pk) -> Export:
    return found_or_404(selectors.export_get_for_viewer(user=request.user, pk=pk))


class ExportDetailApi(APIView):
    @extend_schema(responses=ExportSerializer)
    def get(self, request, pk: int):
        return Response(ExportSerializer(_export_for(request, pk)).data)


class ExportCancelApi(APIView):
    @extend_schema(
        request=None,
        responses={202: ExportSerializer, 409: OpenApiResponse(ErrorSerializer, description="Already finished")},
    )
    def post(self, request, pk: int):
        export = _export_for(request, pk)
        if export.is_finished:
            return error_response(f"This export has already {export.status}.", code=status.HTTP_409_CONFLICT)
        export = services.export_cancel(export=export, by=request.user)
        return Response(ExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)


def _download(request, export: Export):
    if export.status != Export.Status.SUCCEEDED:
        return error_response(f"This export is {export.status}; there is no file to download.", code=404)
    if not export.is_available:
        return error_response(
            "This export's file was deleted by the retention policy; run the export again.", code=404
        )
    return export_file_response(request, export=export, missing=lambda: error_response(
        "This export's file is no longer in storage; run the export again.", code=status.HTTP_410_GONE))


DOWNLOAD_TYPES = sorted(set(FORMAT_CONTENT_TYPES.values()) | {"application/octet-stream"})


class ExportDownloadApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("Range", str, OpenApiParameter.HEADER, description="bytes=START-END")],
        responses={
            **{(200, media): OpenApiResponse(bytes, description="The file") for media in DOWNLOAD_TYPES},
            **{(206, media): OpenApiResponse(bytes, description="The range asked for") for media in DOWNLOAD_TYPES},
            304: OpenApiResponse(description="Unchanged since If-None-Match"),
            410: OpenApiResponse(ErrorSerializer, description="The file is no longer in storage"),
            416: OpenApiResponse(description="The range is outside the file"),
        },
    )
    def get(self, request, pk: int):
        return _download(request, _export_for(request, pk))


class ExportLatestApi(APIView):
    """Resume: the user's latest finished export (404 with a clear message when none or expired)."""

    @extend_schema(
        responses={
            200: ExportSerializer,
            404: OpenApiResponse(
                inline_serializer("ExportLatestMissing", {
                    "detail": serializers.CharField(),
                    "export": ExportSerializer(required=False, help_text="The expired export, when there is one"),
                }),
                description="No finished export, or the latest one expired",
            ),
        }
    )
    def get(self, request):
        export = selectors.export_latest_finished(user=request.user)
        if export is None:
            return error_response("You have no finished export yet.", code=404)
        if not export.is_available:
            return error_response(
                f"Your latest export (#{export.pk}) has expired: its file was deleted by the retention "
                "policy. Run the export again.", code=404, export=ExportSerializer(export).data,
            )
        return Response(ExportSerializer(export).data)


class ExpressionValidateApi(APIView):
    @extend_schema(
        # Any JSON body is answered: whatever is not an expression text is reported `valid: false`.
        request={"application/json": {
            "description": "Anything else, even a body that is not an object, is answered with `valid: false`.",
            "properties": {"expression": {"description": "The expression text", "example": "PRICE*SIZE"}},
        }},
        responses=inline_serializer(
            "ExpressionValidation",
            {"valid": serializers.BooleanField(), "error": serializers.CharField(),
             "position": serializers.IntegerField(allow_null=True), "normalized": serializers.CharField()},
        ),
    )
    def post(self, request):
        # Always 200: invalid input is an answer here, not an error.
        text = request.data.get("expression", "") if hasattr(request.data, "get") else None
        if not isinstance(text, str):
            return Response({"valid": False, "error": "The expression must be text (character 1)", "position": 1, "normalized": ""})
        valid, error, position = expressions.validate(text)
        return Response(
            {"valid": valid, "error": error, "position": position,
             "normalized": expressions.normalize(text) if valid else ""}
        )

