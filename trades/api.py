"""REST API of trades: thin views that validate, call one service/selector, serialize."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import error_response
from core.permissions import get_visible_or_404
from trades import expressions, selectors, services, slots
from trades.downloads import export_file_response
from trades.models import Export
from trades.serializers import (
    ExchangeSerializer,
    ExportRequestSerializer,
    ExportSerializer,
    ExpressionValidateSerializer,
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


class PreviewApi(APIView):
    @extend_schema(request=PreviewRequestSerializer, responses=None)
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
    @extend_schema(responses=ExportSerializer(many=True))
    def get(self, request):
        exports = slots.queue_positions_attach(selectors.export_list(user=request.user).select_related(None)[:100])
        return Response(ExportSerializer(exports, many=True).data)

    @extend_schema(request=ExportRequestSerializer, responses={200: ExportSerializer, 202: ExportSerializer})
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
    return get_visible_or_404(Export.objects.all(), request.user, pk)


class ExportDetailApi(APIView):
    @extend_schema(responses=ExportSerializer)
    def get(self, request, pk: int):
        return Response(ExportSerializer(_export_for(request, pk)).data)


class ExportCancelApi(APIView):
    @extend_schema(request=None, responses=ExportSerializer)
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
    return export_file_response(request, export=export)


class ExportDownloadApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request, pk: int):
        return _download(request, _export_for(request, pk))


class ExportLatestApi(APIView):
    """Resume: the user's latest finished export (404 with a clear message when none or expired)."""

    @extend_schema(responses=ExportSerializer)
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
        request=ExpressionValidateSerializer,
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
            return Response({"valid": False, "error": "expression must be text", "position": 1, "normalized": ""})
        valid, error, position = expressions.validate(text)
        return Response(
            {"valid": valid, "error": error, "position": position,
             "normalized": expressions.normalize(text) if valid else ""}
        )

