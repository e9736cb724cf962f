"""Combined records: list them, export them to CSV, and read and download the export."""

from __future__ import annotations

from django.http import Http404
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView
from drf_spectacular.utils import OpenApiTypes, extend_schema

from core.api import Pagination
from core.fields import StrictCharField
from core.permissions import found_or_404
from etl import selectors, services
from etl.api.fields import BranchField, check_range
from etl.api.responses import paginated
from etl.downloads import file_response
from etl.models import POS_NUMBERS, Branch, RecordExport


class RecordFilter(serializers.Serializer):
    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)
    year = serializers.IntegerField(required=False, min_value=1990, max_value=2100)
    branch = BranchField(required=False)
    pos = serializers.ChoiceField(choices=POS_NUMBERS, required=False)
    item = StrictCharField(required=False, max_length=64)

    def validate(self, attrs):
        return check_range(attrs)


class RecordOutput(serializers.Serializer):
    id = serializers.IntegerField()
    branch = serializers.CharField(source="branch.code")
    pos = serializers.IntegerField()
    work_date = serializers.DateField()
    line_no = serializers.IntegerField()
    tnsc = serializers.CharField()
    sale_date = serializers.DateField()
    sale_time = serializers.TimeField()
    item_code = serializers.CharField()
    department = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3)
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    payment_method = serializers.CharField()


class RecordListApi(APIView):
    pagination_class = Pagination

    @extend_schema(parameters=[RecordFilter], responses=RecordOutput(many=True))
    def get(self, request):
        filters = RecordFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return paginated(self, request, selectors.record_list(filters=filters.validated_data), RecordOutput)


class ExportOutput(serializers.ModelSerializer):
    download = serializers.SerializerMethodField()

    class Meta:
        model = RecordExport
        fields = ("id", "status", "progress", "message", "error", "filters", "row_count", "created_at",
                  "finished_at", "download")

    def get_download(self, obj) -> str | None:
        return f"/api/etl/exports/{obj.pk}/download/" if obj.file else None


class RecordExportApi(APIView):
    """Queue a CSV export of the filtered records (e.g. `{"year": 2025}` for one combined file of the year).

    POST only: a GET never starts a job (a link on another site could trigger it). The filters come in the
    body, or in the query string when the body is empty.
    """

    # The schema lists the body only: a query string is read only when the body is empty, so a
    # client sending both would find its query ignored.
    @extend_schema(request=RecordFilter, responses={202: ExportOutput})
    def post(self, request):
        if not isinstance(request.data, dict):  # a JSON body that is not an object (a form is a QueryDict, a dict)
            raise serializers.ValidationError({"detail": ["Send the filters as a JSON object."]})
        params = request.data or request.query_params
        filters = RecordFilter(data=params)
        filters.is_valid(raise_exception=True)
        export = services.record_export_create(user=request.user, filters=filters.validated_data)
        return Response(ExportOutput(export).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(APIView):
    @extend_schema(responses=ExportOutput)
    def get(self, request, pk: int):
        return Response(ExportOutput(found_or_404(selectors.record_export_get_for_viewer(user=request.user, pk=pk))).data)


class ExportDownloadApi(APIView):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        export = found_or_404(selectors.record_export_get_for_viewer(user=request.user, pk=pk))
        if not export.file:
            raise Http404("The export has no file yet.")
        return file_response(request, export.file, export.file.name.rsplit("/", 1)[-1])
