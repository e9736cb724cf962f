"""Stored POS files: list and download."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.views import APIView
from drf_spectacular.utils import OpenApiTypes, extend_schema

from core.api import Pagination
from core.permissions import found_or_404
from etl import selectors
from etl.api.fields import MAX_ID, BranchField
from etl.api.responses import paginated
from etl.downloads import file_response
from etl.models import FetchedFile
from etl.parsing import FILE_TYPES


class FileOutput(serializers.ModelSerializer):
    branch = serializers.CharField(source="branch.code")
    download = serializers.SerializerMethodField()

    class Meta:
        model = FetchedFile
        fields = ("id", "job", "branch", "attempt", "filename", "filetype", "chosen", "row_count", "size", "sha256",
                  "uploaded_at", "download")

    def get_download(self, obj) -> str:
        return f"/api/etl/files/{obj.pk}/download/"


class FileFilter(serializers.Serializer):
    job = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    job_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    branch = BranchField(required=False)
    filetype = serializers.ChoiceField(choices=FILE_TYPES, required=False)


class FileListApi(APIView):
    pagination_class = Pagination

    @extend_schema(parameters=[FileFilter], responses=FileOutput(many=True))
    def get(self, request):
        filters = FileFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        v = dict(filters.validated_data)
        v["job"] = v.get("job") or v.get("job_id")
        return paginated(self, request, selectors.fetched_file_list(user=request.user, filters=v), FileOutput)


class FileDownloadApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        stored = found_or_404(selectors.fetched_file_get_for_viewer(user=request.user, pk=pk))
        return file_response(request, stored.file, stored.filename)
